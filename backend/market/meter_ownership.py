"""Order intake's meter check: an ENERGY order may only name a meter its maker owns.

Settlement pays a sale from the export of the meter the trade names, so a seller naming
another account's meter would be paid for that account's energy (issue 12). The meters table
answers who owns a registered meter. A meter id nobody has registered is the maker's only when
it is bound to the maker: an owner-bound id (top 20 bytes = the owner's address, the shared
scheme of issue 12 that the contract checks at fill) or the maker's default id
(`meter:<address>`, what intake fills in when the order names no meter).
"""

from __future__ import annotations

from eth_utils import to_checksum_address
from sqlmodel import Session

from backend.accounts.models import Account
from backend.market import orders as eip712
from backend.market.errors import MeterNotOwned
from backend.meters.models import Meter


def default_meter_id(maker: str) -> bytes:
    """The meter an order names when its terms name none."""
    return eip712.meter_id(f"meter:{to_checksum_address(maker)}")


def _bound_to(meter_id: bytes, maker: str) -> bool:
    return meter_id[:20] == bytes.fromhex(maker[2:]) or meter_id == default_meter_id(maker)


def check_meter_owned(session: Session, account: Account, order: eip712.Order) -> None:
    """MeterNotOwned unless `account`, the maker of ENERGY `order`, owns the meter it names."""
    if order.product != eip712.ENERGY:
        return
    meter = "0x" + order.meterId.hex()
    registered = session.get(Meter, meter)
    owned = (
        registered.owner_id == account.id
        if registered is not None
        else _bound_to(order.meterId, order.maker)
    )
    if not owned:
        raise MeterNotOwned(
            f"meter {meter} is not registered to {order.maker}: an order may only name its "
            "maker's own meter",
            meter_id=meter,
            maker=order.maker,
        )
