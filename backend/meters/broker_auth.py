"""Per-device MQTT logins for Mosquitto: a password file and an ACL generated from the meters.

Each meter logs in with its meter id (0x-hex, what it puts in the topic's deviceId) and the
password given at registration, each DER with its resource id and its password; the ACL lets a
device publish only its own telemetry (`pattern write energy-cloud/+/+/%u/<metric>`) and read
only its own `command` and `config` topics, which only the service login may write. The
ingestion subscriber has its own login that may read everything. Hashes use Mosquitto's own
format (`$7$`: PBKDF2-HMAC-SHA512, 210,000 rounds, 12-byte salt), so the broker checks them
itself; `verify` checks the same hashes in Python.

`python -m backend.meters.broker_auth PASSWORD_FILE ACL_FILE` writes both files; point
Mosquitto's `password_file`/`acl_file` at them, set `allow_anonymous false`, and send it
SIGHUP after a meter is registered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
from pathlib import Path

from sqlmodel import Session, col, select

from backend.core.config import Settings, get_settings

ITERATIONS = 210_000  # OWASP for PBKDF2-HMAC-SHA512 (mosquitto_passwd defaults to 101)


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify(password: str, stored: str) -> bool:
    try:
        _, kind, iterations, salt, digest = stored.split("$")
        if kind != "7":
            return False
        expected = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(base64.b64encode(expected).decode(), digest)


DEVICE_METRICS = ("reading", "consumption", "generation", "output", "soc", "status")
DOWNLINK = ("command", "config")  # backend/vpp/downlink.py


def acl_text(*, topic_root: str, service_user: str) -> str:
    """The service login reads everything and writes the downlink; a device (username: its
    meter or resource id) writes only its own telemetry and status (its acknowledgements) and
    reads only its own command and config topics."""
    lines = [
        f"user {service_user}",
        f"topic read {topic_root}/#",
        *(f"topic write {topic_root}/+/+/+/{metric}" for metric in DOWNLINK),
        "",
        *(f"pattern write {topic_root}/+/+/%u/{metric}" for metric in DEVICE_METRICS),
        *(f"pattern read {topic_root}/+/+/%u/{metric}" for metric in DOWNLINK),
        "",
    ]
    return "\n".join(lines)


def write_broker_auth(
    session: Session, *, password_file: Path, acl_file: Path, settings: Settings
) -> int:
    """Write the password file (service login + every meter with an MQTT password) and the ACL.

    Returns the number of device logins written (meters, then active DERs with a password).
    """
    from backend.meters.models import Meter
    from backend.resources.models import DerResource, ResourceStatus

    if not settings.mqtt_username or not settings.mqtt_password.get_secret_value():
        raise ValueError(
            "set GRIDLEDGER_MQTT_USERNAME and GRIDLEDGER_MQTT_PASSWORD for the ingestion login"
        )
    lines = [
        f"{settings.mqtt_username}:{mosquitto_hash(settings.mqtt_password.get_secret_value())}"
    ]
    meters = session.exec(
        select(Meter)
        .where(col(Meter.mqtt_password_hash).is_not(None))
        .order_by(col(Meter.meter_id))
    )
    count = 0
    for meter in meters:
        lines.append(f"{meter.meter_id}:{meter.mqtt_password_hash}")
        count += 1
    devices = session.exec(
        select(DerResource)
        .where(
            col(DerResource.mqtt_password_hash).is_not(None),
            DerResource.status == ResourceStatus.ACTIVE.value,
        )
        .order_by(col(DerResource.id))
    )
    for resource in devices:
        lines.append(f"{resource.id}:{resource.mqtt_password_hash}")
        count += 1
    for path, text in (
        (password_file, "\n".join(lines) + "\n"),
        (
            acl_file,
            acl_text(topic_root=settings.mqtt_topic_root, service_user=settings.mqtt_username),
        ),
    ):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(path)
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m backend.meters.broker_auth PASSWORD_FILE ACL_FILE", file=sys.stderr)
        return 2
    from backend.core.db import get_engine

    with Session(get_engine()) as session:
        count = write_broker_auth(
            session, password_file=Path(argv[0]), acl_file=Path(argv[1]), settings=get_settings()
        )
    print(f"wrote {count} device logins")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
