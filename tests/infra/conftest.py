"""One synthesis of the stack for every infra test, exactly as `cdk synth` builds it.

Given the app from `infra.app.build_app` with cdk.json's context, synthesised once for the
session, the tests beside this file read its template.
"""

from __future__ import annotations

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app import build_app
from infra.stack import DurableGraphStack
from tests.infra.template_queries import MAIL_FROM, NO_BUNDLING


@pytest.fixture(scope="session")
def app_and_stack() -> tuple[App, DurableGraphStack]:
    """The stack as deployed for the seed example: `-c mail_from=...` lets it send email."""
    return build_app({**NO_BUNDLING, "mail_from": MAIL_FROM})


@pytest.fixture(scope="session")
def template(app_and_stack: tuple[App, DurableGraphStack]) -> Template:
    return Template.from_stack(app_and_stack[1])
