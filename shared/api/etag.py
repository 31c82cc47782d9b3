"""ETag / If-None-Match for JSON reads: a client polling an unchanged view gets a bodiless 304.

`etag_json(request, model)` renders the model once, tags it with a hash of the bytes and answers 304 when the
request already holds that tag. Reusable by any read route: pass `ETAG_RESPONSES` to its decorator.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

ETAG_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `ETag` sent in `If-None-Match` is still current."}
}
CACHE_CONTROL = "no-cache"  # a cache may keep it, but must ask again (a 304 is cheap)


def etag_of(body: bytes) -> str:
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return tag in candidates or "*" in candidates


def etag_json(request: Request, model: BaseModel) -> Response:
    body = model.model_dump_json().encode()
    tag = etag_of(body)
    headers = {"etag": tag, "cache-control": CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
