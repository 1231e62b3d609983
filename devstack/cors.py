"""The bucket's CORS rules, read from infra/bucket.yaml so the local S3 matches production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "bucket.yaml"

# CloudFormation names these fields differently from the S3 PutBucketCors API.
_CFN_TO_S3 = {
    "AllowedHeaders": "AllowedHeaders",
    "AllowedMethods": "AllowedMethods",
    "AllowedOrigins": "AllowedOrigins",
    "ExposedHeaders": "ExposeHeaders",
    "MaxAge": "MaxAgeSeconds",
    "Id": "ID",
}


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation's short tags (``!Ref X``) as ``{"!Ref": X}``."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}")
    return {f"!{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tagged)


def load_template(template: Path = TEMPLATE) -> dict[str, Any]:
    """The CloudFormation template as plain data, short tags kept as ``{"!Tag": value}``."""
    doc: dict[str, Any] = yaml.load(template.read_text(), Loader=_CfnLoader)  # noqa: S506
    return doc


def cors_rules(parameters: dict[str, str], template: Path = TEMPLATE) -> list[dict[str, Any]]:
    """The upload bucket's CORS rules in PutBucketCors form, with ``!Ref`` parameters filled in.

    ``parameters`` gives values for the template's parameters (like ``AllowedOrigin``);
    a parameter not given takes the template's default; one without a default
    (``AllowedOrigin``) must be given: ValueError names it.
    """
    doc = load_template(template)
    values = {name: str(p["Default"]) for name, p in doc["Parameters"].items() if "Default" in p}
    values.update(parameters)
    bucket = doc["Resources"]["UploadBucket"]["Properties"]
    rules = bucket["CorsConfiguration"]["CorsRules"]
    return [
        {_CFN_TO_S3[name]: _resolve(value, values) for name, value in rule.items()}
        for rule in rules
    ]


def _resolve(value: Any, parameters: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [_resolve(item, parameters) for item in value]
    if isinstance(value, dict) and set(value) == {"!Ref"}:
        if value["!Ref"] not in parameters:
            raise ValueError(f"the bucket template's parameter {value['!Ref']} has no default")
        return parameters[value["!Ref"]]
    return value
