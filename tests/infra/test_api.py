"""API Gateway in the synthesised stack: exactly the routes, with their authorization, proxied
to the api function; a stage that logs and traces.
"""

from __future__ import annotations

from aws_cdk.assertions import Template

from infra.components.api import ROUTES, STAGE_NAME
from infra.components.explorer_auth import EXPLORER_ROUTES
from infra.components.functions import API
from tests.infra.template_queries import function_of, only, resource_paths


def test_api_declares_exactly_the_routes_with_their_authorization(template: Template) -> None:
    api_function_id, _ = function_of(template, API)
    paths = resource_paths(template)

    methods = template.find_resources("AWS::ApiGateway::Method")
    declared = {
        (
            m["Properties"]["HttpMethod"],
            paths[m["Properties"]["ResourceId"]["Ref"]],
            m["Properties"]["AuthorizationType"],
        )
        for m in methods.values()
    }

    assert declared == {
        ("POST", "/threads", "NONE"),
        ("GET", "/threads/{id}", "AWS_IAM"),
        ("GET", "/threads/{id}/history", "AWS_IAM"),
        ("GET", "/threads/{id}/steps/{n}", "AWS_IAM"),
        ("POST", "/threads/{id}/resume", "AWS_IAM"),
        ("GET", "/threads/{id}/verify", "AWS_IAM"),
        ("GET", "/threads/{id}/diff", "AWS_IAM"),
        ("GET", "/threads/{id}/export", "AWS_IAM"),
        ("POST", "/threads/{id}/fork", "AWS_IAM"),
        ("POST", "/threads/{id}/erase", "AWS_IAM"),
        ("GET", "/approvals/{token}", "NONE"),
        ("POST", "/approvals/{token}", "NONE"),
    } | {  # the ledger explorer's, tested in test_explorer_auth.py
        (r.method, r.path, "NONE") for r in EXPLORER_ROUTES
    }
    assert len(methods) == len(ROUTES) + len(EXPLORER_ROUTES)
    for method in methods.values():
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert {"Fn::GetAtt": [api_function_id, "Arn"]} in integration["Uri"]["Fn::Join"][1]


def test_api_stage_logs_and_traces(template: Template) -> None:
    _, stage = only(template.find_resources("AWS::ApiGateway::Stage"))
    properties = stage["Properties"]

    assert properties["StageName"] == STAGE_NAME
    assert properties["TracingEnabled"] is True
    assert "DestinationArn" in properties["AccessLogSetting"]
    assert {
        "HttpMethod": "*",
        "ResourcePath": "/*",
        "LoggingLevel": "ERROR",
    }.items() <= properties["MethodSettings"][0].items()
