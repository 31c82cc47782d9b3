"""Print the API's OpenAPI document (what `/api/openapi.json` serves) without starting a server or a database."""

import json
import sys

from shared.api.app import create_app


def _no_container() -> None:
    raise RuntimeError("the OpenAPI document needs no container")


json.dump(create_app(_no_container).openapi(), sys.stdout, indent=2)  # type: ignore[arg-type]
