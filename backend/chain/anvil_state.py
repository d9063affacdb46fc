"""Anvil's `--state` file, kept loadable across a SIGKILL.

Anvil writes the file on a clean exit and, with `--state-interval`, every few seconds, in
place (not atomically): a node killed mid-write leaves half a JSON document that the next
Anvil refuses to load, and a node killed before its first write leaves no file at all (the
next start is a new chain with a new genesis, so `make run` redeploys and the mirror is
emptied). Before each start we check the file and keep its last loadable copy beside it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def backup_of(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".good")


def loadable(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return isinstance(json.load(handle), dict)
    except (OSError, ValueError):
        return False


def prepare_state_file(state_file: Path) -> str | None:
    """Make `state_file` loadable before Anvil starts; returns what was repaired, if anything.

    A loadable file is copied to `<file>.good` (atomically); an unloadable one is replaced by
    that copy, or set aside as `<file>.corrupt` when there is none (Anvil then starts anew).
    """
    if not state_file.exists():
        return None
    backup = backup_of(state_file)
    if loadable(state_file):
        partial = backup.with_name(backup.name + ".tmp")
        shutil.copyfile(state_file, partial)
        partial.replace(backup)
        return None
    if backup.is_file() and loadable(backup):
        shutil.copyfile(backup, state_file)
        return f"{state_file.name} was cut short (killed mid-write); resumed from {backup.name}"
    state_file.replace(state_file.with_name(state_file.name + ".corrupt"))
    return f"{state_file.name} could not be loaded and has no good copy; starting a new chain"
