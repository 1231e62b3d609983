"""Run `chalice deploy --stage STAGE` in this process against moto, and print what it made.

    python tests/packaging/chalice_deploy_on_moto.py PROJECT_DIR STAGE

Chalice's own CLI runs in-process under ``moto.mock_aws()``, whose IAM validates policy
documents as IAM does (a ``${...}`` resource is ``MalformedPolicyDocument``). It runs in
a process of its own because Chalice imports ``app`` by name and writes the stage's
variables into ``os.environ``: a test process would keep both.

moto cannot import the Swagger 2.0 document Chalice sends to API Gateway (its
``import_rest_api`` wants OpenAPI 3 and ``info.description``, and then fails on a mock
integration), so the deploy is stopped there: ``import_rest_api`` keeps the document it
was given and raises. Everything Chalice creates before the API (roles and their
policies, both functions, the verifier's EventBridge rule and its target) is real moto
state; the API is checked as the document it would have imported.

Prints one JSON object: ``error`` (what stopped the deploy), ``roles``, ``functions``,
``rules`` and ``api_document``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import boto3
from chalice import awsclient
from chalice.cli import cli
from click.testing import CliRunner
from moto import mock_aws


class StoppedAtApiImport(Exception):
    """Raised in place of API Gateway's import_rest_api, which moto cannot do."""


def main(project: str, stage: str) -> None:
    os.environ.update(AWS_DEFAULT_REGION="eu-west-1", AWS_ACCESS_KEY_ID="test",
                      AWS_SECRET_ACCESS_KEY="test")  # fmt: skip
    imported: list[dict[str, Any]] = []

    def import_rest_api(self: Any, swagger_document: dict[str, Any], endpoint_type: str) -> str:
        imported.append(swagger_document)
        raise StoppedAtApiImport("moto cannot import Chalice's Swagger 2.0 document")

    awsclient.TypedAWSClient.import_rest_api = import_rest_api  # type: ignore[method-assign]
    with mock_aws():
        done = CliRunner().invoke(cli, ["--project-dir", project, "deploy", "--stage", stage],
                                  obj={})  # fmt: skip
        iam, lam, events = (boto3.client(s) for s in ("iam", "lambda", "events"))
        roles = {
            role["RoleName"]: {
                name: iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)[
                    "PolicyDocument"
                ]
                for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
            }
            for role in iam.list_roles()["Roles"]
        }
        keys = ("Handler", "Role", "MemorySize", "Timeout", "Runtime")
        functions = {
            f["FunctionName"]: {
                **{k: f[k] for k in keys},
                "Variables": f.get("Environment", {}).get("Variables", {}),
                "Invokers": _invokers(lam, f["FunctionName"]),
            }
            for f in lam.list_functions()["Functions"]
        }  # fmt: skip
        rules = {
            rule["Name"]: {
                "EventPattern": json.loads(rule["EventPattern"]),
                "Targets": [t["Arn"] for t in events.list_targets_by_rule(
                    Rule=rule["Name"])["Targets"]],
            }
            for rule in events.list_rules()["Rules"]
        }  # fmt: skip
    error = done.exception
    print(json.dumps({
        "error": f"{type(error).__name__}: {error}" if error else None,
        "roles": roles, "functions": functions, "rules": rules,
        "api_document": imported[0] if imported else None,
    }))  # fmt: skip


def _invokers(lam: Any, name: str) -> list[Any]:
    """The principals the function's resource policy lets invoke it."""
    try:
        policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        return []
    return [statement["Principal"] for statement in policy["Statement"]]


if __name__ == "__main__":
    main(*sys.argv[1:3])
