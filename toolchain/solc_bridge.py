"""Present npm's `solcjs` to py-solc-x / ape-solidity as if it were native `solc`.

py-solc-x runs `solc-v<version> --version` and `solc-v<version> --standard-json
--base-path DIR [--allow-paths ...]` with the input on stdin. solcjs differs in three
ways that this bridge hides:

* it has no `--allow-paths` flag (we drop it; `--base-path` and `--include-path` pass);
* it may print a `>>> Cannot retry compilation with SMT ...` banner before the JSON;
* its stdout is cut at 64 KiB when it is a pipe, so we let it write to a file and
  relay the whole file ourselves;
* it reads stdin with `fs.readFileSync(0)`, which fails with EAGAIN when stdin is a pipe
  whose data is not there yet, so we hand it the input as a regular file instead.

It also adds the project root as an `--include-path`: ape-solidity compiles a copy of
`contracts/` in a temporary folder, where `node_modules/@openzeppelin/...` (our import
remapping target) does not exist; solc then finds it under the include path.

The executable installed by :mod:`toolchain.install_solc` sets `GRIDLEDGER_SOLCJS`
(the solc.js path), `GRIDLEDGER_SOLC_VERSION` (the long version string) and
`GRIDLEDGER_PROJECT_ROOT`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

# Flags native solc accepts that solcjs does not; each takes one value.
_DROPPED_FLAGS_WITH_VALUE = {"--allow-paths"}


class BridgeError(Exception):
    """A failure the user can act on; printed as one line on stderr."""


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise BridgeError(
            "node not found on PATH: install Node.js 18+ (and npm), then run `make setup`"
        )
    return node


def solcjs_path() -> str:
    path = os.environ.get("GRIDLEDGER_SOLCJS", "")
    if not path or not os.path.isfile(path):
        raise BridgeError(
            f"solcjs not found at {path or '(GRIDLEDGER_SOLCJS unset)'}: run `make setup` "
            "(npm ci installs the `solc` package)"
        )
    return path


def version_banner(long_version: str) -> str:
    """The two lines native `solc --version` prints, which py-solc-x parses."""
    return f"solc, the solidity compiler commandline interface\nVersion: {long_version}\n"


def filter_arguments(argv: list[str]) -> list[str]:
    """Drop the native-only flags (and their values) that solcjs would reject."""
    kept: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in _DROPPED_FLAGS_WITH_VALUE:
            skip_next = True
            continue
        if arg.split("=", 1)[0] in _DROPPED_FLAGS_WITH_VALUE:
            continue
        kept.append(arg)
    return kept


def extract_json(raw: str) -> str:
    """Return the JSON document in solcjs output, skipping any banner lines before it."""
    start = raw.find("{")
    if start < 0:
        raise BridgeError(f"solcjs produced no JSON output: {raw.strip()[:200]!r}")
    document = raw[start:].strip()
    json.loads(document)  # fail here, with our message, rather than in py-solc-x
    return document


def compile_standard_json(argv: list[str], stdin_data: bytes) -> str:
    """Run solcjs in standard-JSON mode, its stdout going to a file, and return the JSON."""
    arguments = filter_arguments(argv)
    project_root = os.environ.get("GRIDLEDGER_PROJECT_ROOT")
    if project_root and "--base-path" in arguments:
        arguments += ["--include-path", project_root]
    command = [node_executable(), solcjs_path(), *arguments]
    with (
        tempfile.TemporaryFile() as source,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        source.write(stdin_data)
        source.seek(0)
        completed = subprocess.run(command, stdin=source, stdout=out, stderr=err, check=False)
        out.seek(0)
        err.seek(0)
        raw = out.read().decode("utf-8", errors="replace")
        stderr_text = err.read().decode("utf-8", errors="replace").strip()
    if completed.returncode != 0 and "{" not in raw:
        raise BridgeError(f"solcjs exited with {completed.returncode}: {stderr_text[:500]}")
    return extract_json(raw)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if "--version" in argv:
            version = os.environ.get("GRIDLEDGER_SOLC_VERSION")
            if not version:
                raise BridgeError(
                    "GRIDLEDGER_SOLC_VERSION unset: reinstall the bridge with `make setup`"
                )
            sys.stdout.write(version_banner(version))
            return 0
        if "--standard-json" not in argv:
            raise BridgeError(
                "only --version and --standard-json are supported by the solcjs bridge"
            )
        document = compile_standard_json(argv, sys.stdin.buffer.read())
        sys.stdout.write(document)
        sys.stdout.flush()
        return 0
    except BridgeError as exc:
        print(f"gridledger solc bridge: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
