"""Errors of the REC domain (mapped to problem details in backend/api/problems.py)."""

from backend.core.errors import InvalidInput


class WalletMustSign(InvalidInput):
    code = "wallet-must-sign"
    title = "Wallet accounts sign their own transactions"
