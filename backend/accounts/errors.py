"""Errors of the accounts domain: registration, sign-in, tokens and role administration."""

from backend.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated


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


class UnknownAccount(NotFound):
    code = "unknown-account"
    title = "No such account"


class UnknownRole(InvalidInput):
    code = "unknown-role"
    title = "No such role"


class LastAdmin(Conflict):
    code = "last-admin"
    title = "The last administrator cannot give up the admin role"
