"""W3C WoT Thing Description 1.1 of a DER (`application/td+json`).

What a consumer learns from the document: properties `output` (W, + feeds the grid), `soc`
(Wh, storage only) and `status`, readable over HTTP from our API and observable on the MQTT
broker; actions `setpoint` (target power within the resource's limits) and `configure`,
invoked by publishing on the device's `…/command` and `…/config` topics (QoS 1); event
`statusChanged`. Topics follow WIA-ENE-014: `{root}/{gridArea}/{deviceType}/{id}/{metric}`.
HTTP forms are relative to `base` (the API's `/v1/`); MQTT forms use the MQTT binding
vocabulary (`mqv:`). The consumer authenticates as on every API call (bearer token or API key).
"""

from __future__ import annotations

from typing import Any

from backend.core.config import Settings
from backend.resources.models import DerResource, ResourceKind, ResourceStatus
from backend.resources.services import location_of

# TD 1.1 (§5.3.1.1): the 1.1 context, after the 1.0 one when both are given; both keep the
# document valid for 1.0 consumers and for the TD 1.1 schema of every published version.
TD_CONTEXTS = ["https://www.w3.org/2019/wot/td/v1", "https://www.w3.org/2022/wot/td/v1.1"]
TD_MEDIA_TYPE = "application/td+json"
DIRECTORY_MEDIA_TYPE = "application/ld+json"  # WoT Discovery: a listing is a JSON array of TDs
GL_VOCABULARY = "https://gridledger.dev/ns/der#"
HTTP_VOCABULARY = "http://www.w3.org/2011/http#"
MQTT_VOCABULARY = "http://www.example.org/mqtt-binding#"  # the MQTT binding template's `mqv`

SEMANTIC_TYPE = {
    ResourceKind.PV: "gl:PhotovoltaicSystem",
    ResourceKind.BATTERY: "gl:Battery",
    ResourceKind.EV_CHARGER: "gl:EVCharger",
    ResourceKind.FLEXIBLE_LOAD: "gl:FlexibleLoad",
    ResourceKind.HEAT_PUMP: "gl:HeatPump",
}

SECURITY_DEFINITIONS: dict[str, Any] = {
    "bearer_sc": {"scheme": "bearer", "in": "header", "name": "Authorization", "format": "jwt"},
    "apikey_sc": {"scheme": "apikey", "in": "header", "name": "X-API-Key"},
    "api_sc": {"scheme": "combo", "oneOf": ["bearer_sc", "apikey_sc"]},
    "broker_sc": {"scheme": "basic"},  # the device's MQTT broker login (username, password)
}


def thing_id(resource: DerResource) -> str:
    return f"urn:uuid:{resource.id}"


def topic(settings: Settings, resource: DerResource, metric: str) -> str:
    """The resource's MQTT topic for `metric` (device type: the kind with hyphens)."""
    device_type = resource.kind.replace("_", "-")
    return f"{settings.mqtt_topic_root}/{resource.grid_area}/{device_type}/{resource.id}/{metric}"


def broker(settings: Settings) -> str:
    return f"mqtt://{settings.mqtt_host}:{settings.mqtt_port}"


def observe_form(settings: Settings, resource: DerResource, metric: str, op: str) -> dict[str, Any]:
    return {
        "href": broker(settings),
        "op": [op],
        "mqv:filter": topic(settings, resource, metric),
        "mqv:controlPacket": "subscribe",
        "mqv:qos": "1",
        "contentType": "application/json",
        "security": ["broker_sc"],
    }


def publish_form(settings: Settings, resource: DerResource, metric: str) -> dict[str, Any]:
    return {
        "href": broker(settings),
        "op": ["invokeaction"],
        "mqv:topic": topic(settings, resource, metric),
        "mqv:controlPacket": "publish",
        "mqv:qos": "1",
        "contentType": "application/json",
        "security": ["broker_sc"],
    }


def read_form(resource: DerResource, name: str) -> dict[str, Any]:
    return {
        "href": f"resources/{resource.id}/properties/{name}",
        "op": ["readproperty"],
        "htv:methodName": "GET",
        "contentType": "application/json",
    }


def properties(settings: Settings, resource: DerResource) -> dict[str, Any]:
    found: dict[str, Any] = {
        "output": {
            "title": "Output",
            "description": "active power at the connection point; positive feeds the grid",
            "type": "integer",
            "unit": "W",
            "minimum": -resource.max_charge_w,
            "maximum": resource.max_discharge_w,
            "readOnly": True,
            "observable": True,
            "forms": [
                read_form(resource, "output"),
                observe_form(settings, resource, "output", "observeproperty"),
            ],
        },
        "status": {
            "title": "Status",
            "type": "string",
            "enum": [s.value for s in ResourceStatus],
            "readOnly": True,
            "observable": True,
            "forms": [
                read_form(resource, "status"),
                observe_form(settings, resource, "status", "observeproperty"),
            ],
        },
    }
    if resource.is_storage:
        found["soc"] = {
            "title": "State of charge",
            "type": "integer",
            "unit": "Wh",
            "minimum": 0,
            "maximum": resource.energy_capacity_wh,
            "readOnly": True,
            "observable": True,
            "forms": [
                read_form(resource, "soc"),
                observe_form(settings, resource, "soc", "observeproperty"),
            ],
        }
    return found


def actions(settings: Settings, resource: DerResource) -> dict[str, Any]:
    return {
        "setpoint": {
            "title": "Power setpoint",
            "description": "target power until `until` (for PV: a cap on export); positive "
            "feeds the grid. The device acknowledges on its `status` topic.",
            "input": {
                "type": "object",
                "properties": {
                    "powerW": {
                        "type": "integer",
                        "unit": "W",
                        "minimum": -resource.max_charge_w,
                        "maximum": resource.max_discharge_w,
                    },
                    "until": {"type": "string", "format": "date-time"},
                    "commandId": {"type": "string"},
                },
                "required": ["powerW"],
            },
            "safe": False,
            "idempotent": True,
            "forms": [publish_form(settings, resource, "command")],
        },
        "configure": {
            "title": "Configuration",
            "description": "limits and reporting interval pushed to the device",
            "input": {
                "type": "object",
                "properties": {
                    "maxChargeW": {"type": "integer", "minimum": 0, "unit": "W"},
                    "maxDischargeW": {"type": "integer", "minimum": 0, "unit": "W"},
                    "reportIntervalS": {"type": "integer", "minimum": 1, "unit": "s"},
                },
            },
            "forms": [publish_form(settings, resource, "config")],
        },
    }


def thing_description(settings: Settings, resource: DerResource, base: str) -> dict[str, Any]:
    """The resource's TD; `base` is the API's absolute `/v1/` URL as the client reached it."""
    kind = ResourceKind(resource.kind)
    location = location_of(resource)
    return {
        "@context": [
            *TD_CONTEXTS,
            {
                "gl": GL_VOCABULARY,
                "mqv": MQTT_VOCABULARY,
                "htv": HTTP_VOCABULARY,
                "@language": "en",
            },
        ],
        "@type": [SEMANTIC_TYPE[kind]],
        "id": thing_id(resource),
        "title": resource.name,
        "description": f"{kind.value} behind meter {resource.meter_id} in {resource.grid_area}",
        "created": resource.created_at.isoformat(),
        "modified": resource.updated_at.isoformat(),
        "base": base,
        "securityDefinitions": SECURITY_DEFINITIONS,
        "security": ["api_sc"],
        "gl:kind": kind.value,
        "gl:gridArea": resource.grid_area,
        "gl:capabilities": [c.value for c in resource.capabilities()],
        "gl:capacityW": resource.capacity_w,
        **(
            {"gl:energyCapacityWh": resource.energy_capacity_wh}
            if resource.energy_capacity_wh is not None
            else {}
        ),
        "gl:available": resource.available,
        **({"gl:location": location.model_dump()} if location else {}),
        "properties": properties(settings, resource),
        "actions": actions(settings, resource),
        "events": {
            "statusChanged": {
                "title": "Status changed",
                "description": "the device's status or its acknowledgement of a command",
                "data": {"type": "object"},
                "forms": [observe_form(settings, resource, "status", "subscribeevent")],
            }
        },
        "forms": [
            {
                "href": f"resources/{resource.id}/state",
                "op": ["readallproperties"],
                "htv:methodName": "GET",
                "contentType": "application/json",
            }
        ],
        "links": [
            {"href": f"resources/{resource.id}", "rel": "alternate", "type": "application/json"}
        ],
    }
