"""CDK app for durable-graph's serverless backend.

One stack (`infra.stack.DurableGraphStack`) built from one construct per concern in
`infra.components`. `infra.table_definition` is the CDK-free description of the DynamoDB table
that moto tests share with the stack.

Deploying (synthesis alone needs neither a network nor an AWS account):

    .venv/bin/python -m infra.package      # build/layer/python: library + arm64 wheels
    npx cdk deploy -c graph=examples.email_approval:graph [-c approval_email=ops@example.com]

Without `build/layer`, the stack falls back to the raw `shared/` folder as the layer asset so
that `cdk synth` and the tests work offline; that fallback is not deployable (see
`infra.components.functions`).
"""
