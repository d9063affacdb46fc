"""One-time secrets stay one-time when two requests present them at the same moment."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from sqlmodel import Session

from backend.accounts import services
from backend.accounts.errors import InvalidRefreshToken, SiweNonceInvalid
from backend.accounts.siwe import siwe_message
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.core.utc import utc_now


def test_a_refresh_token_presented_twice_at_once_rotates_once(fresh_pg_url, tmp_path, monkeypatch):
    engine = make_engine(fresh_pg_url)
    settings = Settings(_env_file=None, data_dir=tmp_path)
    with Session(engine) as session:
        account = services.register(
            session, settings, email="race@example.org", password="correct horse battery"
        )
        token = services.issue_tokens(session, settings, account).refresh_token

    # Both requests read the stored token before either writes: the interleaving that let a
    # read-then-write rotation hand out two token pairs for one refresh token.
    both_read = threading.Barrier(2, timeout=10)
    read = services._stored_refresh_token

    def read_then_wait(session: Session, presented: str):
        stored = read(session, presented)
        both_read.wait()
        return stored

    monkeypatch.setattr(services, "_stored_refresh_token", read_then_wait)

    def present() -> str:
        with Session(engine) as session:
            try:
                return services.refresh(session, settings, token).refresh_token
            except InvalidRefreshToken:
                return "refused"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: present(), range(2)))
    engine.dispose()
    assert sorted(outcome == "refused" for outcome in outcomes) == [False, True], outcomes


def test_a_siwe_message_presented_twice_at_once_signs_in_once(fresh_pg_url, tmp_path, monkeypatch):
    engine = make_engine(fresh_pg_url)
    settings = Settings(_env_file=None, data_dir=tmp_path)
    wallet = EthAccount.create()
    with Session(engine) as session:
        nonce = services.new_siwe_nonce(session, settings).nonce
    message = siwe_message(
        uri="http://gridledger.test",
        chain_id=settings.chain_id,
        address=wallet.address,
        nonce=nonce,
        issued_at=utc_now(),
    )
    signature = "0x" + bytes(wallet.sign_message(encode_defunct(text=message)).signature).hex()

    # Both requests pass every check, nonce lookup included, before either marks the nonce used.
    both_checked = threading.Barrier(2, timeout=10)
    check_signature = services.signed_by

    def check_then_wait(*args, **kwargs) -> bool:
        valid = check_signature(*args, **kwargs)
        both_checked.wait()
        return valid

    monkeypatch.setattr(services, "signed_by", check_then_wait)

    def present() -> str:
        with Session(engine) as session:
            try:
                services.siwe_login(
                    session, settings, message=message, signature=signature, host="gridledger.test"
                )
            except SiweNonceInvalid:
                return "refused"
            return "signed in"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: present(), range(2)))
    engine.dispose()
    assert outcomes == ["refused", "signed in"]
