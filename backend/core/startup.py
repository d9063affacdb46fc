"""Entry points read their settings here: a refused configuration ends the process with one
line that says what to set (exit status 2), not a traceback."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from backend.core.config import Settings, get_settings
from backend.core.errors import ConfigurationError


def settings_or_exit(component: str) -> Settings:
    try:
        return get_settings()
    except ConfigurationError as exc:
        message = str(exc)
    except ValidationError as exc:
        message = "invalid settings: " + "; ".join(
            f"GRIDLEDGER_{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"
            for error in exc.errors()
        )
    print(f"{component}: {message}", file=sys.stderr)
    raise SystemExit(2)
