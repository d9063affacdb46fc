"""Order intake's meter check: an ENERGY order may only name a meter its maker owns.

Settlement pays a sale from the export of the meter the trade names, so a seller naming
another account's meter would be paid for that account's energy (issue 12). The meters table
answers who owns a registered meter. A meter id nobody has registered is the maker's only when
it is bound to the maker: its top 20 bytes are the maker's address (owner-bound ids, which the
contract checks at fill as well).
"""

from __future__ import annotations

from eth_utils import to_checksum_address
from sqlmodel import Session

from backend.accounts.models import Account
from backend.market import orders as eip712
from backend.market.errors import MeterNotOwned
from backend.meters.models import Meter


def check_meter_owned(session: Session, account: Account, order: eip712.Order) -> None:
    """MeterNotOwned unless `account`, the maker of ENERGY `order`, owns the meter it names."""
    if order.product != eip712.ENERGY:
        return
    meter = "0x" + order.meterId.hex()
    registered = session.get(Meter, meter)
    owned = eip712.meter_owner(order.meterId) == to_checksum_address(order.maker) and (
        registered is None or registered.owner_id == account.id
    )
    if not owned:
        raise MeterNotOwned(
            f"meter {meter} is not registered to {order.maker}: an order may only name its "
            "maker's own meter",
            meter_id=meter,
            maker=order.maker,
        )
