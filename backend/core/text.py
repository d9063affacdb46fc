"""Text stored in a fixed number of bytes on chain: `max_length` counts characters, but a
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
