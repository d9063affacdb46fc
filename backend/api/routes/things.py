"""WoT Thing Descriptions of the registered DERs and their directory (WoT Discovery).

`GET /v1/things/{id}` is one TD (`application/td+json`). `GET /v1/things` is the directory's
listing: a JSON array of TDs (`application/ld+json`) of active resources, filtered by type,
grid area, capability and availability, paged with `offset`/`limit` and a `Link: rel="next"`
header while more remain (the Discovery API's listing).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from backend.api.deps import Reader, SessionDep, SettingsDep
from backend.api.problem_docs import raises
from backend.resources import services
from backend.resources.errors import ResourceNotFound
from backend.resources.models import Capability, ResourceKind
from backend.resources.thing_description import (
    DIRECTORY_MEDIA_TYPE,
    TD_MEDIA_TYPE,
    thing_description,
)

router = APIRouter(prefix="/things", tags=["things"])
MAX_PAGE = 200


def api_base(request: Request) -> str:
    """The absolute `/v1/` URL the client reached us at: the TD's `base`."""
    return str(request.url_for("list_things")).rsplit("things", 1)[0]


def td_response(body: Any, media_type: str, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), media_type=media_type, headers=headers)


@router.get(
    "",
    responses={
        200: {
            "description": "a JSON array of Thing Descriptions",
            "content": {
                DIRECTORY_MEDIA_TYPE: {"schema": {"type": "array", "items": {"type": "object"}}}
            },
        }
    },
)
def list_things(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    account: Reader,
    type: ResourceKind | None = None,
    area: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")] = None,
    capability: Capability | None = None,
    available: bool | None = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    """Discover DERs: active resources' Thing Descriptions matching every filter given."""
    found = services.discover(
        session,
        kind=type,
        grid_area=area,
        capability=capability,
        available=available,
        offset=offset,
        limit=limit + 1,
    )
    base = api_base(request)
    headers = {}
    if len(found) > limit:
        found = found[:limit]
        following = request.url.include_query_params(offset=offset + limit)
        headers["Link"] = f'<{following}>; rel="next"'
    return td_response(
        [thing_description(settings, r, base) for r in found], DIRECTORY_MEDIA_TYPE, headers
    )


@router.get(
    "/{resource_id}",
    responses={
        200: {
            "description": "the resource's W3C WoT Thing Description 1.1",
            "content": {TD_MEDIA_TYPE: {"schema": {"type": "object"}}},
        },
        **raises(ResourceNotFound),
    },
)
def get_thing(
    resource_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    account: Reader,
) -> Response:
    """A resource's Thing Description (decommissioned ones too: links to them still resolve)."""
    resource = services.get_resource(session, resource_id)
    return td_response(thing_description(settings, resource, api_base(request)), TD_MEDIA_TYPE)
