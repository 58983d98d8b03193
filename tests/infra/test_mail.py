"""Email (SES) in the synthesised stack: only the worker may send, only from the configured
identity; none without `-c mail_from`; a bad mail setting fails the synthesis.
"""

from __future__ import annotations

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from durable_graph.backends.aws import names
from infra.app import build_app
from infra.components.functions import SPECS, WORKER, FunctionSpec
from infra.stack import StackConfig
from tests.infra.template_queries import (
    MAIL_FROM,
    NO_BUNDLING,
    Resource,
    as_list,
    function_of,
    joined_parts,
    statements_of,
)


def ses_statements(template: Template, spec: FunctionSpec) -> list[Resource]:
    return [
        s
        for s in statements_of(template, spec)
        if any(a.startswith("ses:") for a in as_list(s["Action"]))
    ]


def test_only_the_worker_may_send_email_and_only_from_the_configured_identity(
    template: Template,
) -> None:
    """Given `-c mail_from=agent@example.com`, then the worker (which runs nodes) may call
    ses:SendEmail on that identity's ARN with that From address, and no other function may
    call SES; every function is told the address."""
    [statement] = ses_statements(template, WORKER)

    assert statement["Action"] == "ses:SendEmail"
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": MAIL_FROM}}
    parts = joined_parts(statement["Resource"])
    assert parts[-1] == f":identity/{MAIL_FROM}" and {"Ref": "AWS::AccountId"} in parts
    for spec in SPECS:
        _, function = function_of(template, spec)
        assert function["Properties"]["Environment"]["Variables"][names.ENV_MAIL_FROM] == MAIL_FROM
        if spec is not WORKER:
            assert ses_statements(template, spec) == []


def test_without_mail_from_no_function_may_send_email() -> None:
    _, stack = build_app(NO_BUNDLING)
    template = Template.from_stack(stack)

    for spec in SPECS:
        assert ses_statements(template, spec) == []
        _, function = function_of(template, spec)
        assert names.ENV_MAIL_FROM not in function["Properties"]["Environment"]["Variables"]


def test_a_domain_identity_is_granted_for_an_address_in_it() -> None:
    context = {**NO_BUNDLING, "mail_from": "agent@mail.example.com"}
    _, stack = build_app({**context, "mail_identity": "mail.example.com"})
    [statement] = ses_statements(Template.from_stack(stack), WORKER)

    assert joined_parts(statement["Resource"])[-1] == ":identity/mail.example.com"
    assert statement["Condition"]["StringEquals"]["ses:FromAddress"] == "agent@mail.example.com"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"mail_from": "Agent Smith"}, "mail_from: not an email address"),
        ({"mail_from": "a@example.com", "mail_identity": "other.org"}, "not an address of"),
        ({"mail_identity": "example.com"}, "needs -c mail_from"),
    ],
)
def test_a_bad_mail_setting_fails_the_synthesis_naming_it(
    context: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        StackConfig.from_context(App(context=context).node)
