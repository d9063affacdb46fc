"""The solcjs bridge behaves like native solc for py-solc-x and ape-solidity."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import solcx
from solcx.exceptions import SolcError

from toolchain import install_solc, solc_bridge

PROJECT_ROOT = Path(__file__).resolve().parents[2]

ERC20_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
contract Coin is ERC20 { constructor() ERC20("Coin", "C") {} }
"""


@pytest.fixture(scope="module")
def bridge(tmp_path_factory) -> Path:
    return install_solc.install(tmp_path_factory.mktemp("compilers"))


def standard_input(source: str, output: dict | None = None) -> dict:
    return {
        "language": "Solidity",
        "sources": {"contracts/Coin.sol": {"content": source}},
        "settings": {
            "remappings": ["@openzeppelin/contracts=node_modules/@openzeppelin/contracts"],
            "outputSelection": output or {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }


def test_version_is_parsed_by_py_solc_x(bridge):
    assert bridge.name == "solc-v0.8.28"
    assert str(solcx.wrapper.get_solc_version(bridge)) == "0.8.28"
    banner = subprocess.run([bridge, "--version"], capture_output=True, text=True, check=True)
    assert banner.stdout.splitlines()[1].startswith("Version: 0.8.28+commit.")


def test_standard_json_round_trip_through_py_solc_x(bridge, tmp_path):
    source = (
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n"
        "contract A { uint256 public x = 7; }\n"
    )
    payload = {
        "language": "Solidity",
        "sources": {"A.sol": {"content": source}},
        "settings": {"outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }
    # allow_paths makes py-solc-x pass --allow-paths, which solcjs rejects: the bridge drops it.
    output = solcx.compile_standard(
        payload, solc_binary=bridge, base_path=tmp_path, allow_paths=tmp_path
    )
    contract = output["contracts"]["A.sol"]["A"]
    assert [item["name"] for item in contract["abi"]] == ["x"]
    assert len(contract["evm"]["bytecode"]["object"]) > 100


def test_output_larger_than_64_kib_is_relayed_whole(bridge, tmp_path):
    everything = {"*": {"*": ["*"], "": ["ast"]}}
    output = solcx.compile_standard(
        standard_input(ERC20_SOURCE, everything), solc_binary=bridge, base_path=tmp_path
    )
    assert len(json.dumps(output)) > 65_536
    assert "Coin" in output["contracts"]["contracts/Coin.sol"]
    assert any(source.startswith("node_modules/@openzeppelin") for source in output["sources"])


def test_compiler_errors_surface_as_errors(bridge, tmp_path):
    broken = (
        "pragma solidity ^0.8.24;\ncontract Broken { function f() public { undefined_name(); } }\n"
    )
    with pytest.raises(SolcError) as raised:
        solcx.compile_standard(standard_input(broken), solc_binary=bridge, base_path=tmp_path)
    assert "Undeclared identifier" in str(raised.value)


def test_missing_node_gives_one_line_actionable_error(bridge, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no node on this PATH
    result = subprocess.run(
        [bridge, "--standard-json"], input="{}", capture_output=True, text=True, env=env
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "node not found on PATH" in result.stderr and "make setup" in result.stderr


def test_smt_banner_before_json_is_skipped():
    raw = (
        ">>> Cannot retry compilation with SMT because there are no SMT solvers available.\n"
        '{"sources":{}}'
    )
    assert json.loads(solc_bridge.extract_json(raw)) == {"sources": {}}


def test_output_without_json_is_an_error():
    with pytest.raises(solc_bridge.BridgeError, match="no JSON"):
        solc_bridge.extract_json("Segmentation fault")


def test_native_only_flags_are_dropped():
    argv = ["--standard-json", "--allow-paths", "/a,/b", "--base-path", "/p", "--allow-paths=/c"]
    assert solc_bridge.filter_arguments(argv) == ["--standard-json", "--base-path", "/p"]


def test_install_is_idempotent(tmp_path):
    first = install_solc.install(tmp_path)
    stamp = first.stat().st_mtime_ns
    second = install_solc.install(tmp_path)
    assert second == first and second.stat().st_mtime_ns == stamp
    assert os.access(second, os.X_OK)


def test_solcjs_reads_its_input_from_a_regular_file(bridge, tmp_path):
    """solcjs reads stdin with fs.readFileSync(0), which fails with EAGAIN on a pipe whose
    data has not arrived yet (seen under load): the bridge must never give it a pipe."""
    import shutil

    real_node = shutil.which("node")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "node").write_text(
        "#!/bin/sh\n"
        '[ -f /dev/stdin ] || { echo "stdin is not a regular file" >&2; exit 3; }\n'
        f'exec "{real_node}" "$@"\n'
    )
    (fake_bin / "node").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    payload = json.dumps(standard_input(ERC20_SOURCE))
    result = subprocess.run(
        [bridge, "--standard-json", "--base-path", str(tmp_path)],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Coin" in json.loads(result.stdout)["contracts"]["contracts/Coin.sol"]
