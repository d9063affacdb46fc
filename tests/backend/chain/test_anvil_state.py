"""Anvil's state file stays loadable when the node is killed while writing it."""

from __future__ import annotations

import json

from backend.chain.anvil_state import backup_of, prepare_state_file


def test_a_loadable_state_is_kept_and_copied(tmp_path):
    state = tmp_path / "anvil-state.json"
    state.write_text(json.dumps({"block": {"number": "0x5"}}))
    assert prepare_state_file(state) is None
    assert json.loads(backup_of(state).read_text()) == {"block": {"number": "0x5"}}


def test_a_state_cut_short_is_replaced_by_the_last_good_copy(tmp_path):
    state = tmp_path / "anvil-state.json"
    state.write_text(json.dumps({"block": {"number": "0x5"}}))
    prepare_state_file(state)
    state.write_text('{"block": {"number": "0x9"}, "accounts": {"0xab')  # killed mid-write
    repaired = prepare_state_file(state)
    assert repaired is not None and "cut short" in repaired
    assert json.loads(state.read_text()) == {"block": {"number": "0x5"}}


def test_a_broken_state_without_a_copy_is_set_aside(tmp_path):
    state = tmp_path / "anvil-state.json"
    state.write_text('{"block": ')
    repaired = prepare_state_file(state)
    assert repaired is not None and "new chain" in repaired
    assert not state.exists() and (tmp_path / "anvil-state.json.corrupt").is_file()


def test_no_state_file_is_nothing_to_repair(tmp_path):
    assert prepare_state_file(tmp_path / "anvil-state.json") is None
