"""`python -m backend.audit verify`: walk the audit log's hash chain in the configured database;
exit status 1 when an entry was changed or deleted."""

from __future__ import annotations

import argparse
import sys

from sqlmodel import Session

from backend.audit.queries import verification
from backend.core.db import get_engine
from backend.core.startup import settings_or_exit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.audit", description=__doc__)
    parser.add_argument("command", choices=["verify"])
    parser.parse_args(argv)
    settings_or_exit("audit")
    with Session(get_engine()) as session:
        result = verification(session)
    if result.intact:
        print(f"audit log intact: {result.entries} entries, head {result.head_hash}")
        return 0
    print(
        f"audit log BROKEN at entry {result.first_broken_id}: {result.problem} "
        f"({result.entries} entries verified before it)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
