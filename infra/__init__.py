"""CDK app for durable-graph's serverless backend.

One stack (`infra.stack.DurableGraphStack`) built from one construct per concern in
`infra.components`. `infra.table_definition` is the CDK-free description of the DynamoDB table
that moto tests share with the stack; `infra.package` builds the Lambda layer for a deploy.
"""
