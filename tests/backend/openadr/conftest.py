"""The VTN tests' worlds: `world`, a committed account with a meter, two known VENs and their
certificates from the VTN's CA; `house`, one VEN in the test's rolled-back session."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from backend.accounts.models import Account, Role
from backend.core.db import make_engine
from backend.core.dev_ca import ensure_ca
from backend.openadr import services
from tests.fixtures.meters import seed_meters
from tests.fixtures.openadr import FP, ven_files, vtn_settings


@pytest.fixture
def world(fresh_pg_url, tmp_path):
    """A committed account with a meter, two known VENs (house: a participant; head-end: a
    metering data provider), their certificates from the VTN's CA."""
    settings = vtn_settings(fresh_pg_url, tmp_path / "tls")
    ca = ensure_ca(tmp_path / "tls")
    engine = make_engine(fresh_pg_url)
    certs = {name: ven_files(ca, name, tmp_path / "vens") for name in ("house", "headend")}
    with Session(engine) as session:
        owner, _other, solar, _house = seed_meters(session)
        provider = Account(
            email="mdp@example.org",
            address="0x" + "cc" * 20,
            roles=[Role.METER_DATA_PROVIDER.value],
        )
        session.add(provider)
        session.flush()
        for name, account in (("house", owner), ("headend", provider)):
            services.add_ven(
                session,
                ven_id=f"ven-{name}",
                ven_name=name,
                account_id=account.id,
                cert_fingerprint=certs[name].fingerprint,
                meter_ids=[solar.meter_id],
            )
        session.commit()
        meter_name = solar.name
    yield settings, engine, certs, ca, meter_name
    engine.dispose()


@pytest.fixture
def house(db_session):
    owner, _other, solar, _house = seed_meters(db_session)
    services.add_ven(
        db_session,
        ven_id="ven-house",
        ven_name="house",
        account_id=owner.id,
        cert_fingerprint=FP,
        meter_ids=[solar.meter_id],
    )
    return db_session, owner, solar
