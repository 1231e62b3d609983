"""`make package`: `chalice package`, plus what its template lacks for a real deployment.

    python -m infra.package --stage prod build/prod

API Gateway, not the Lambda, answers a request its authorizer refuses (401, 403), an
unknown route (403 "Missing Authentication Token") and throttling (429). By default those
answers carry no CORS headers, so a browser hides them from the page, which sees only a
network error. This writes a template that gives them the stage's CORS origin and the
shape of the Lambda's own errors ({"Code": ..., "Message": ...}), and merges it into
what `chalice package` produces (its API resource is ``RestAPI``).

It also names the function ``presigned-upload-<stage>``, as `chalice deploy` does:
otherwise CloudFormation invents a name, and the role's log permission, scoped to
``/aws/lambda/presigned-upload-<stage>``, would not cover the function's own logs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.settings import cors_allow_origin
from infra.stages import APP_NAME, PROJECT, stage_environment, stage_names

# Every 4xx and 5xx type without a response of its own inherits these two, which covers
# UNAUTHORIZED, ACCESS_DENIED, MISSING_AUTHENTICATION_TOKEN, THROTTLED and the rest.
RESPONSE_TYPES = ("DEFAULT_4XX", "DEFAULT_5XX")
BODY = '{"Code": "$context.error.responseType", "Message": $context.error.messageString}'


def merge_template(stage: str, origin: str) -> dict[str, Any]:
    """The template to merge into Chalice's SAM output for a stage with this CORS origin."""
    response = {
        # SAM wants header values as API Gateway mapping expressions: a quoted literal.
        "ResponseParameters": {"Headers": {"Access-Control-Allow-Origin": f"'{origin}'"}},
        "ResponseTemplates": {"application/json": BODY},
    }
    return {
        "Resources": {
            "APIHandler": {"Properties": {"FunctionName": f"{APP_NAME}-{stage}"}},
            "RestAPI": {
                "Properties": {"GatewayResponses": dict.fromkeys(RESPONSE_TYPES, response)}
            },
        }
    }


def package(stage: str, out: Path) -> Path:
    """Write ``out/sam.json`` and ``out/deployment.zip`` for ``stage``; return the template."""
    origin = cors_allow_origin(stage_environment(stage))
    out.mkdir(parents=True, exist_ok=True)
    merge = out / "gateway-responses.json"
    merge.write_text(json.dumps(merge_template(stage, origin), indent=2) + "\n")
    chalice = Path(sys.executable).with_name("chalice")
    # Chalice insists on a region, yet its template takes the region from the stack
    # (AWS::Region): any value gives the same bytes, so do not make the caller pick one.
    env = {"AWS_DEFAULT_REGION": "us-east-1", **os.environ}
    subprocess.run(
        [str(chalice), "package", "--stage", stage, "--merge-template", str(merge), str(out)],
        cwd=PROJECT,
        env=env,
        check=True,
    )
    return out / "sam.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__)
    parser.add_argument("--stage", required=True, choices=stage_names())
    parser.add_argument("out", type=Path, help="directory for sam.json and deployment.zip")
    args = parser.parse_args(argv)
    print(package(args.stage, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
