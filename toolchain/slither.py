"""Run Slither over contracts/, offline, and fail on any finding of Medium impact or above.

Slither cannot compile through our solcjs bridge on its own: its `solc` platform asks for
`--combined-json`, which solcjs lacks, and `--solc-standard-json` on the `.sol` files gives the
bridge no base path, so imports fail. What works is a standard-JSON *input* that carries every
source's text inline, fed to `slither --compile-force-framework solc-json`:

1. ask the compiler once which files our contracts pull in (the `sources` of its output);
2. write the input with each of those files' `content` and ape-config.yaml's settings;
3. run Slither on it, results in dependencies (OpenZeppelin) filtered out, and read its JSON.

Why Medium: High and Medium detectors point at lost or locked funds, so each such finding gets
a decision in the source (a fix, or `// slither-disable-next-line <detector>` with the reason
above it). Low and Informational ones here flag the design itself (deadlines compared with
`block.timestamp`, the memory-safe hashing assembly, getters named like constructor arguments,
`DOMAIN_SEPARATOR`); they are listed on every run but do not fail it.

Usage: python -m toolchain.slither [--slither PATH] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, TypedDict

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = PROJECT_ROOT / "contracts"
DEFAULT_SLITHER = PROJECT_ROOT / ".venv-slither" / "bin" / "slither"
DEPENDENCY_PATHS = "node_modules|@openzeppelin"
FAILING_IMPACTS = ("High", "Medium")
IMPACT_ORDER = ("High", "Medium", "Low", "Informational", "Optimization")


class SlitherError(Exception):
    """A failure to run the analysis at all (not a finding); printed as one line."""


class Finding(TypedDict):
    check: str
    impact: str
    description: str


def compiler_settings(ape_config: Path) -> tuple[str, dict[str, Any]]:
    """The solc version and standard-JSON `settings` that `ape compile` uses."""
    solidity = yaml.safe_load(ape_config.read_text()).get("solidity", {})
    settings: dict[str, Any] = {
        "remappings": list(solidity.get("import_remapping", [])),
        "optimizer": {
            "enabled": bool(solidity.get("optimize", True)),
            "runs": int(solidity.get("optimization_runs", 200)),
        },
        "viaIR": bool(solidity.get("via_ir", False)),
    }
    if "evm_version" in solidity:
        settings["evmVersion"] = solidity["evm_version"]
    return str(solidity["version"]), settings


def compile_standard_json(solc: Path, document: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        [str(solc), "--standard-json", "--base-path", str(PROJECT_ROOT)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    if completed.returncode != 0:
        raise SlitherError(f"{solc} exited with {completed.returncode}: {completed.stderr.strip()}")
    output: dict[str, Any] = json.loads(completed.stdout)
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise SlitherError("compilation failed:\n" + "\n".join(errors))
    return output


def standard_json_input(solc: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Our contracts and every file they import, each with its text inline."""
    ours = {
        path.relative_to(PROJECT_ROOT).as_posix(): {"content": path.read_text()}
        for path in sorted(CONTRACTS.rglob("*.sol"))
    }
    listing = compile_standard_json(
        solc,
        {
            "language": "Solidity",
            "sources": ours,
            "settings": {**settings, "outputSelection": {"*": {"": ["ast"]}}},
        },
    )
    sources = {name: {"content": (PROJECT_ROOT / name).read_text()} for name in listing["sources"]}
    selection = ["abi", "evm.bytecode", "evm.deployedBytecode", "evm.methodIdentifiers"]
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {**settings, "outputSelection": {"*": {"*": selection, "": ["ast"]}}},
    }


def run_slither(slither: Path, solc: Path, input_path: Path, json_path: Path) -> list[Finding]:
    if not slither.is_file():
        raise SlitherError(f"{slither} missing: run `make lint` (it installs slither-analyzer)")
    completed = subprocess.run(
        [
            str(slither),
            str(input_path),
            "--compile-force-framework",
            "solc-json",
            "--solc",
            str(solc),
            "--filter-paths",
            DEPENDENCY_PATHS,
            "--json",
            str(json_path),
            "--fail-none",
            "--disable-color",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    if not json_path.is_file():
        raise SlitherError(f"slither wrote no results:\n{completed.stderr.strip()[-2000:]}")
    report = json.loads(json_path.read_text())
    if not report.get("success"):
        raise SlitherError(f"slither failed: {report.get('error')}")
    detectors = report.get("results", {}).get("detectors", [])
    return [
        Finding(check=d["check"], impact=d["impact"], description=d["description"].strip())
        for d in detectors
    ]


def summary(findings: list[Finding]) -> str:
    counts = Counter((f["impact"], f["check"]) for f in findings)
    parts = [
        f"{impact} {check} ×{count}"
        for impact in IMPACT_ORDER
        for (found_impact, check), count in sorted(counts.items())
        if found_impact == impact
    ]
    return ", ".join(parts) or "no findings"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slither", type=Path, default=DEFAULT_SLITHER)
    parser.add_argument("--json", type=Path, help="also keep Slither's JSON results here")
    args = parser.parse_args(argv)
    try:
        version, settings = compiler_settings(PROJECT_ROOT / "ape-config.yaml")
        solc = PROJECT_ROOT / ".solcx" / f"solc-v{version}"
        if not solc.is_file():
            raise SlitherError(f"{solc} missing: run `make setup` (it installs the solc bridge)")
        with tempfile.TemporaryDirectory(prefix="gridledger-slither-") as tmp:
            input_path = Path(tmp) / "input.json"
            input_path.write_text(json.dumps(standard_json_input(solc, settings)))
            json_path = args.json or Path(tmp) / "results.json"
            json_path.unlink(missing_ok=True)
            findings = run_slither(args.slither, solc, input_path, json_path)
    except SlitherError as exc:
        print(f"slither: {exc}", file=sys.stderr)
        return 2
    failing = [f for f in findings if f["impact"] in FAILING_IMPACTS]
    for finding in failing:
        print(f"slither: {finding['impact']} {finding['check']}: {finding['description']}")
    print(f"slither: {summary(findings)}")
    if failing:
        print(
            "slither: fix each finding above, or accept it with "
            "`// slither-disable-next-line <detector>` and the reason on the line above",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
