"""Mosquitto's TLS listener: the configuration lines, and a broker for `make run`.

A TLS listener of its own (8883 by convention) accepting TLS 1.3 only (`tls_version
tlsv1.3`), with the same logins as the plain one: per-device passwords and the ACL from
`broker_auth` when given, else anonymous (the development broker, loopback only).

`python -m backend.meters.broker_tls [PASSWORD_FILE ACL_FILE]` writes
`<data dir>/tls/mosquitto.conf` from settings (`GRIDLEDGER_TLS=dev` or `on`) and runs
Mosquitto with it in place of this process; `make run` starts it with `GRIDLEDGER_TLS=dev`.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from backend.core.config import Settings
from backend.core.startup import settings_or_exit
from backend.core.tls import prepare


def tls_listener(
    *, port: int, ca_file: Path, cert_file: Path, key_file: Path, host: str = "127.0.0.1"
) -> str:
    """The `listener` block: TLS 1.3 only, the server's chain and key; clients verify it
    against `ca_file` (Mosquitto needs one to enable TLS on the listener)."""
    return (
        f"listener {port} {host}\n"
        f"cafile {ca_file}\n"
        f"certfile {cert_file}\n"
        f"keyfile {key_file}\n"
        "tls_version tlsv1.3\n"
    )


def broker_config(
    settings: Settings,
    *,
    password_file: Path | None = None,
    acl_file: Path | None = None,
    host: str = "127.0.0.1",
) -> str:
    """A whole Mosquitto configuration with only the TLS listener on `mqtt_tls_port`."""
    lines = [
        "persistence false",
        # QoS 1 messages queued per client beyond those in flight; Mosquitto drops the rest
        # (default 1,000): a burst of readings must wait for the subscribers, not vanish
        "max_queued_messages 1000000",
        # a broker started as root switches to this user: ours, so it can read our 0600 key
        f"user {getpass.getuser()}",
        tls_listener(
            port=settings.mqtt_tls_port,
            host=host,
            ca_file=settings.tls_ca_file,
            cert_file=settings.tls_cert_file,
            key_file=settings.tls_key_file,
        ).rstrip("\n"),
    ]
    if password_file is not None:
        lines += ["allow_anonymous false", f"password_file {password_file}"]
        if acl_file is not None:
            lines.append(f"acl_file {acl_file}")
    else:
        lines.append("allow_anonymous true")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    settings = settings_or_exit("mqtt broker")
    if not settings.tls_enabled or not settings.tls_ca_file.name:
        print(
            "mqtt broker: set GRIDLEDGER_TLS=dev, or GRIDLEDGER_TLS=on with "
            "GRIDLEDGER_TLS_CA_FILE, for the TLS listener",
            file=sys.stderr,
        )
        return 2
    if len(argv) not in (0, 2):
        print(
            "usage: python -m backend.meters.broker_tls [PASSWORD_FILE ACL_FILE]", file=sys.stderr
        )
        return 2
    prepare(settings)
    auth = [Path(a).resolve() for a in argv]
    config_file = settings.data_dir / "tls" / "mosquitto.conf"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(
        broker_config(
            settings,
            password_file=auth[0] if auth else None,
            acl_file=auth[1] if auth else None,
        )
    )
    print(f"mqtt broker: TLS 1.3 on 127.0.0.1:{settings.mqtt_tls_port} ({config_file})", flush=True)
    os.execvp("mosquitto", ["mosquitto", "-c", str(config_file)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
