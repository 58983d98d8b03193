"""Acknowledging cdk-nag findings, one finding at a time and always with a reason.

cdk-nag 3 runs as a CDK validation plugin and fails synthesis on any unacknowledged finding. The
helpers here keep acknowledgements next to the resource they concern and spell out the exact
finding (rule plus, for IAM rules, the action, resource or policy), so an unrelated future
wildcard on the same role is still reported rather than silently covered.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

__all__ = ["acknowledge", "acknowledge_on_role", "arn_reference"]

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding on `scope` and everything below it.

    Args:
        scope: the flagged resource or one of its ancestors in the construct tree.
        finding: the rule suffix, with the finding detail when the rule has one, e.g. `"L1"` or
            `"IAM5[Resource::*]"`.
        reason: why the finding is intended; it is kept in the construct metadata for audit.
    """
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}-{finding}", reason=reason))


def acknowledge_on_role(function: lambda_.IFunction, finding: str, reason: str) -> None:
    """Acknowledge an IAM finding on a function's role, where the policy that triggers it lives.

    A role passed in to a function is its sibling in the construct tree, not its child, so an
    acknowledgement on the function itself would not reach the role's policy.
    """
    if function.role is None:
        msg = f"{function.node.path} has no role to acknowledge {finding} on"
        raise ValueError(msg)
    acknowledge(function.role, finding, reason)


def arn_reference(resource: IConstruct) -> str:
    """How cdk-nag spells `Fn::GetAtt <resource>.Arn` inside an IAM finding: `<LogicalId.Arn>`."""
    default_child = resource.node.default_child
    if not isinstance(default_child, CfnElement):
        msg = f"{resource.node.path} has no CloudFormation resource to reference"
        raise TypeError(msg)
    return f"<{Stack.of(resource).get_logical_id(default_child)}.Arn>"
