"""Errors of the accounts domain: registration, sign-in, tokens and role administration."""

from backend.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)


class EmailTaken(Conflict):
    code = "email-taken"
    title = "An account with this email exists"


class InvalidCredentials(Unauthenticated):
    code = "invalid-credentials"
    title = "Wrong email or password"


class InvalidRefreshToken(Unauthenticated):
    code = "invalid-refresh-token"
    title = "Refresh token unknown, expired or revoked"


class InvalidSiweMessage(Unauthenticated):
    code = "siwe-invalid"
    title = "Sign-In with Ethereum message rejected"


class SiweDomainMismatch(InvalidSiweMessage):
    code = "siwe-domain-mismatch"
    title = "The message's domain is not where this API is served"


class SiweUriMismatch(InvalidSiweMessage):
    code = "siwe-uri-mismatch"
    title = "The message's URI is not on its domain"


class SiweNotCurrent(InvalidSiweMessage):
    code = "siwe-not-current"
    title = "The message is stale, expired or not yet valid"


class SiweChainMismatch(InvalidSiweMessage):
    code = "siwe-chain-mismatch"
    title = "The message is for another chain"


class SiweNonceInvalid(InvalidSiweMessage):
    code = "siwe-nonce-invalid"
    title = "The nonce is unknown, used or expired"


class SiweInvalidSignature(InvalidSiweMessage):
    code = "invalid-signature"
    title = "The signature is not the address's (its key, or its ERC-1271 contract)"


class UnknownAccount(NotFound):
    code = "unknown-account"
    title = "No such account"


class UnknownRole(InvalidInput):
    code = "unknown-role"
    title = "No such role"


class LastAdmin(Conflict):
    code = "last-admin"
    title = "The last administrator cannot give up the admin role"


class InsufficientScope(PermissionDenied):
    """The API key lacks the scope the route declares (see api/deps.py `require_scope`)."""

    code = "insufficient-scope"
    title = "The API key's scopes do not cover this operation"


class ApiKeyExpired(Unauthenticated):
    code = "api-key-expired"
    title = "The API key has expired"
