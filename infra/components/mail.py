"""Sending the graphs' emails through Amazon SES: the one permission it takes.

Nodes send with `ctx.mailer` (`durable_graph.mail`); on AWS that is SES `SendEmail` from the
address in `-c mail_from=...`. The worker, the only function that runs nodes, may call
`ses:SendEmail` on that one identity and nothing else: the resource is the identity's ARN (the
address itself, or the domain given as `-c mail_identity=...` when the domain is what SES
verified), and the `ses:FromAddress` condition pins the sender address. SES identities are
verified outside the stack (a verification mail or DNS records), so the stack only refers to
one.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

__all__ = ["SEND_ACTIONS", "grant_send_email", "identity_arn"]

SEND_ACTIONS = ("ses:SendEmail",)


def identity_arn(stack: Stack, identity: str) -> str:
    """The ARN of SES identity `identity` (an address or a domain) in the stack's account."""
    return stack.format_arn(service="ses", resource="identity", resource_name=identity)


def grant_send_email(function: lambda_.Function, *, identity: str, mail_from: str) -> None:
    """Let `function` send email from `mail_from` through the SES identity `identity`, only."""
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=list(SEND_ACTIONS),
            resources=[identity_arn(Stack.of(function), identity)],
            conditions={"StringEquals": {"ses:FromAddress": mail_from}},
        )
    )
