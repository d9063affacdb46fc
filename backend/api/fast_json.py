"""Responses of the async read routes, serialised once.

A route that returns a model has FastAPI validate it again against `response_model` and walk
it through `jsonable_encoder`; these routes build their model from rows they trust and hand
back its JSON from pydantic's compiled serialiser (the same bytes as before: integers above
2^53 as decimal strings, `backend.core.json_ints`). The route keeps `response_model=` for
the OpenAPI document.
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response


class ModelJSON(Response):
    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200) -> None:
        super().__init__(model.__pydantic_serializer__.to_json(model), status_code=status_code)
