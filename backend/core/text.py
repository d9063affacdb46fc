"""Text the API accepts and stores: `Bytes32Text` for text stored in a fixed number of bytes on
chain, `FreeText` for text kept in the database.

Bytes32Text: `max_length` counts characters, but a
character is up to 4 bytes of UTF-8, so a 32-character string could overflow a bytes32 deep
inside the chain call (a 500). `Bytes32Text` refuses it at the edge (a 422)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _fits_bytes32(value: str) -> str:
    if len(value.encode("utf-8")) > 32:
        raise ValueError("text must encode to at most 32 bytes of UTF-8")
    return value


Bytes32Text = Annotated[str, AfterValidator(_fits_bytes32)]  # right-padded into a bytes32


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL (U+0000) characters")
    return value


# Free text kept in the database: PostgreSQL text cannot hold a NUL, so it is refused at the
# edge (a 422) instead of failing the insert (a 500).
FreeText = Annotated[str, AfterValidator(_no_nul)]
