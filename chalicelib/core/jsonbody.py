"""Request bodies: bounded JSON, parsed without recursion limits in play.

Chalice's ``json_body`` hands any body to ``json.loads``, whose recursion ends in a
RecursionError (an unnamed 500) for about a thousand nested brackets. The API's bodies are
small and shallow (``{"parts": [{"PartNumber": 1, "ETag": "..."}]}``), so anything bigger
or deeper is refused with a 400 before it is parsed.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.core.errors import UploadRejected

# 10,000 parts of about 70 bytes each, with room to spare; API Gateway allows 10 MB.
MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 4  # {"parts": [{...}]} is 3; {"metadata": {...}} is 2


def parse_json(raw: bytes | str | None) -> Any:
    """The body as JSON, or None when there is none; UploadRejected when it is too big,
    too deep, not UTF-8 or not JSON."""
    if not raw:
        return None
    if len(raw) > MAX_BODY_BYTES:
        raise UploadRejected(
            f"the body is {len(raw)} bytes; allowed: at most {MAX_BODY_BYTES} bytes of JSON"
        )
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadRejected("the body is not UTF-8; allowed: a JSON object in UTF-8") from None
    if nesting(text) > MAX_DEPTH:
        raise UploadRejected(
            f"the body nests more than {MAX_DEPTH} levels; allowed: the shapes in openapi.yaml"
        )
    try:
        return json.loads(text)
    except ValueError:
        raise UploadRejected("the body is not valid JSON; allowed: a JSON object") from None


def nesting(text: str) -> int:
    """How deeply ``[`` and ``{`` nest in ``text``, outside strings; one pass, no stack."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
