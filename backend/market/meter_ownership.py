"""Order intake's meter check: an ENERGY order may only name a meter its maker owns.

Settlement pays a sale from the export of the meter the trade names, so a seller naming
another account's meter would be paid for that account's energy (issue 12). The meters table
answers who owns a registered meter. A meter id nobody has registered is the maker's only when
it is bound to the maker: its top 20 bytes are the maker's address (owner-bound ids, which the
contract checks at fill as well).
"""

from __future__ import annotations

import uuid

from sqlmodel import Session

from backend.accounts.models import Account
from backend.chain.signatures import checksum_address
from backend.market import orders as eip712
from backend.market.errors import MeterNotOwned
from backend.meters.models import Meter


def meter_owned(
    order: eip712.Order, account_id: uuid.UUID, registered_owner: uuid.UUID | None
) -> bool:
    """Whether the maker (`account_id`) of ENERGY `order` owns the meter it names, given the
    registered meter's owner (None: nobody registered it)."""
    return eip712.meter_owner(order.meterId) == checksum_address(order.maker) and (
        registered_owner is None or registered_owner == account_id
    )


def not_owned(order: eip712.Order) -> MeterNotOwned:
    meter = "0x" + order.meterId.hex()
    return MeterNotOwned(
        f"meter {meter} is not registered to {order.maker}: an order may only name its "
        "maker's own meter",
        meter_id=meter,
        maker=order.maker,
    )


def check_meter_owned(session: Session, account: Account, order: eip712.Order) -> None:
    """MeterNotOwned unless `account`, the maker of ENERGY `order`, owns the meter it names."""
    if order.product != eip712.ENERGY:
        return
    registered = session.get(Meter, "0x" + order.meterId.hex())
    if not meter_owned(order, account.id, registered.owner_id if registered else None):
        raise not_owned(order)
