"""Keyset pagination walks every row once, in order, in either direction."""

import uuid

import pytest
from sqlmodel import select

from backend.core.pagination import InvalidCursor, decode_cursor, encode_cursor, keyset_page
from indexer.models import Device, DeviceStatus
from tests.fixtures.resources import add_device


def add_devices(session, count: int) -> None:
    for device_id in range(1, count + 1):
        add_device(session, f"0x{device_id:064x}", DeviceStatus.APPROVED, device_id=device_id)


@pytest.mark.parametrize("ascending", [True, False])
def test_pages_cover_every_row_once(db_session, ascending):
    add_devices(db_session, 7)
    seen, cursor = [], None
    for _ in range(10):
        rows, cursor = keyset_page(
            db_session, select(Device), Device.device_id, cursor, 3, ascending=ascending
        )
        seen += [d.device_id for d in rows]
        if cursor is None:
            break
    assert seen == (list(range(1, 8)) if ascending else list(range(7, 0, -1)))


def test_foreign_cursor_is_rejected():
    with pytest.raises(InvalidCursor):
        decode_cursor("bm90LWEtY3Vyc29y")


def test_cursors_carry_their_key_type():
    key = uuid.uuid4()
    assert decode_cursor(encode_cursor(key), uuid.UUID) == key
    assert decode_cursor(encode_cursor(41)) == 41
    with pytest.raises(InvalidCursor):  # an account cursor on an integer-keyed list, and back
        decode_cursor(encode_cursor(key))
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(41), uuid.UUID)
