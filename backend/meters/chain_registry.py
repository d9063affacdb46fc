"""The meter registry on chain: a registrar's approval or suspension, sent to `RECRegistry`.

Signed with the registrar key the API holds (`registrar_private_key`, REGISTRAR_ROLE since
`scripts/deploy.py`), like device approval in backend/recs/services.py. The route changes the
meters table only once the transaction is mined, so the database never claims an approval
the chain does not have; a revert comes back as the contract's custom error.
"""

from __future__ import annotations

from eth_account import Account as EthAccount

from backend.chain.contracts import Chain
from backend.chain.transactions import tx_hash_hex
from backend.core.config import Settings
from backend.meters.models import Meter


def send_approval(settings: Settings, chain: Chain, meter: Meter) -> str:
    """`approveMeter(meterId, approved capacity, signing key)`; the transaction hash."""
    registrar = EthAccount.from_key(settings.registrar_private_key.get_secret_value())
    call = chain.registry.functions.approveMeter(
        bytes.fromhex(meter.meter_id[2:]), meter.approved_capacity_w, meter.signing_key
    )
    return tx_hash_hex(chain.transact(registrar, call))


def send_suspension(settings: Settings, chain: Chain, meter: Meter) -> str:
    """`suspendMeter(meterId)`; the transaction hash."""
    registrar = EthAccount.from_key(settings.registrar_private_key.get_secret_value())
    call = chain.registry.functions.suspendMeter(bytes.fromhex(meter.meter_id[2:]))
    return tx_hash_hex(chain.transact(registrar, call))
