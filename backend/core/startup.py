"""Entry points read their settings here: a refused configuration ends the process with one
line that says what to set (exit status 2), not a traceback."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from backend.core.config import GOVERNANCE_KEY_SETTINGS, Settings, get_settings
from backend.core.errors import ConfigurationError


def governance_keys_held(settings: Settings) -> list[str]:
    """Outside the devnet, the deployer and admin keys set for this process (the API, workers
    and indexer must hold none: admin power goes through `python -m backend.admin`)."""
    if not settings.requires_production_secrets:
        return []
    return [
        f"GRIDLEDGER_{name.upper()}"
        for name in GOVERNANCE_KEY_SETTINGS
        if getattr(settings, name).get_secret_value()
    ]


def settings_or_exit(component: str, *, governance: bool = False) -> Settings:
    """`governance`: the deploy script and the admin command, the only ones that may hold the
    deployer and admin keys."""
    try:
        settings = get_settings()
        held = [] if governance else governance_keys_held(settings)
        if not held:
            return settings
        message = (
            f"refusing to start with {', '.join(held)} set: only the deploy script and "
            "`python -m backend.admin` hold those keys; unset them for this process"
        )
    except ConfigurationError as exc:
        message = str(exc)
    except ValidationError as exc:
        message = "invalid settings: " + "; ".join(
            f"GRIDLEDGER_{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"
            for error in exc.errors()
        )
    print(f"{component}: {message}", file=sys.stderr)
    raise SystemExit(2)
