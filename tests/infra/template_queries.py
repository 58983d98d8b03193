"""Queries over the stack's synthesised template that the infra tests share: a function by its
spec, its role's statements and actions, a queue or bucket by construct id, the API's paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk.assertions import Template

from infra.components.functions import FunctionSpec

Resource = dict[str, Any]

# Synthesis without building the layer (pip for arm64 on every test run); the layer's build is
# tested in test_layer_bundling.py. Everything else is what `cdk synth` produces.
NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}
MAIL_FROM = "agent@example.com"


def only(resources: Mapping[str, Any]) -> tuple[str, Resource]:
    assert len(resources) == 1, sorted(resources)
    logical_id, resource = next(iter(resources.items()))
    return logical_id, resource


def function_of(template: Template, spec: FunctionSpec) -> tuple[str, Resource]:
    return only(
        template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": spec.handler}})
    )


def statements_of(template: Template, spec: FunctionSpec) -> list[Resource]:
    _, function = function_of(template, spec)
    return role_statements(template, function["Properties"]["Role"]["Fn::GetAtt"][0])


def role_statements(template: Template, role_id: str) -> list[Resource]:
    """Every statement of the policies attached to the role `role_id`."""
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    )
    assert policies, f"no policy attached to {role_id}"
    return [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_of(template: Template, spec: FunctionSpec) -> set[str]:
    return {a for s in statements_of(template, spec) for a in as_list(s["Action"])}


def joined_parts(value: Resource) -> list[Any]:
    """The parts of an `Fn::Join`, or nothing for any other intrinsic."""
    join = value.get("Fn::Join")
    return list(join[1]) if join else []


def logical_id(template: Template, resource_type: str) -> str:
    return only(template.find_resources(resource_type))[0]


def queue(template: Template, construct_id: str) -> tuple[str, Resource]:
    queues = template.find_resources("AWS::SQS::Queue")
    return only({k: v for k, v in queues.items() if k.startswith(f"Queueing{construct_id}")})


def bucket(template: Template, construct_id: str) -> tuple[str, Resource]:
    buckets = template.find_resources("AWS::S3::Bucket")
    return only({k: v for k, v in buckets.items() if k.startswith(f"Storage{construct_id}")})


def resource_paths(template: Template) -> dict[str, str]:
    """Logical id of each API Gateway resource (and of the root) -> its full path."""
    resources = template.find_resources("AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(resource_id: str) -> str:
        if resource_id not in paths:
            properties = resources[resource_id]["Properties"]
            parent = properties["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
            paths[resource_id] = f"{prefix}/{properties['PathPart']}"
        return paths[resource_id]

    for resource_id in resources:
        path_of(resource_id)
    return paths


def rule(template: Template, construct_id: str) -> Resource:
    rules = template.find_resources("AWS::Events::Rule")
    return only({k: v for k, v in rules.items() if k.startswith(construct_id)})[1]
