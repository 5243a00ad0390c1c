"""Passwords (argon2), access tokens (JWT, HS256) and API keys (random, SHA-256 at rest, shown once)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kehu.core.db import utcnow
from kehu.core.errors import Unauthorized

# argon2id with OWASP's recommended minimum (Password Storage Cheat Sheet: 19 MiB, 2 passes, 1 lane): ~50 ms of
# one core per sign-in. The library's default (64 MiB, 3 passes, 4 lanes, RFC 9106's second choice) took ~220 ms
# on all the cores of a 2-core server: 600 dealers signing in at nine kept the machine busy hashing. Hashes made
# with other parameters still verify, and are remade with these at the next sign-in (``needs_rehash``).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def use_fast_password_hashing() -> None:
    """Cheap argon2 parameters, for test suites only (production keeps the ones above)."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _DUMMY_HASH = _hasher.hash(secrets.token_hex(16))  # as cheap as the real ones, or unknown e-mails stand out
API_KEY_PREFIX = "kehu_"
JWT_ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with other parameters than today's (remade at the next sign-in)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the user does not exist, so timing does not reveal which e-mails exist.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def burn_password_check(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def create_access_token(secret: str, *, user_id: int, org_id: int, token_version: int, minutes: int,
                        extra: dict[str, Any] | None = None) -> str:
    now = utcnow()
    claims = {
        "sub": str(user_id), "org": org_id, "ver": token_version,
        "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=minutes)).timestamp()),
        "typ": "access",
    }
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


# Tokens this process has verified, with their claims: a token's claims never change, and checking its signature
# and claims anew took a tenth of a millisecond on every API request. Only its expiry is checked again (a token
# is revoked through its "ver" claim against the user's row, read on every request all the same).
_verified: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}  # (claims, expiry)
_VERIFIED_KEPT = 20_000


def _now() -> float:
    return time.time()


def decode_access_token(secret: str, token: str) -> dict[str, Any]:
    """The claims of a valid, unexpired access token (do not change the dict: it is shared)."""
    kept = _verified.get((secret, token))
    if kept is not None:
        claims, expires = kept
        if expires <= _now():  # as PyJWT decides it
            raise Unauthorized("The access token has expired; sign in again.")
        return claims
    try:
        # "ver" is the revocation claim (the user's token_version): a token without it could never be revoked
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM],
                            options={"require": ["sub", "exp", "ver", "typ"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired; sign in again.") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("The access token is not valid.") from exc
    if claims.get("typ") != "access":
        raise Unauthorized("The token is not an access token.")
    if not isinstance(claims.get("ver"), int) or isinstance(claims.get("ver"), bool):
        raise Unauthorized("The access token is not valid.")
    if len(_verified) >= _VERIFIED_KEPT:
        _verified.clear()
    _verified[(secret, token)] = (claims, int(claims["exp"]))  # PyJWT took "exp" as int() takes it
    return claims


@dataclass(frozen=True)
class NewApiKey:
    key: str  # shown to the user once, never stored
    prefix: str  # stored, used to find the row
    digest: str  # stored


def generate_api_key() -> NewApiKey:
    prefix = secrets.token_hex(4)
    key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key=key, prefix=prefix, digest=digest_api_key(key))


def digest_api_key(key: str) -> str:
    # API keys carry 256 bits of entropy, so a fast hash is safe and keeps every request cheap.
    return hashlib.sha256(key.encode()).hexdigest()


def parse_api_key_prefix(key: str) -> str | None:
    if not key.startswith(API_KEY_PREFIX):
        return None
    parts = key[len(API_KEY_PREFIX):].split("_", 1)
    return parts[0] if len(parts) == 2 and parts[0] else None


def api_key_matches(key: str, digest: str) -> bool:
    return hmac.compare_digest(digest_api_key(key), digest)
