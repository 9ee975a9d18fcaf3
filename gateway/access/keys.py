"""Virtual key material: generation, hashing and the prefix people see.

Keys are ``sk-il-`` followed by 43 urlsafe characters (32 random bytes). With that much entropy a
plain SHA-256 is the right storage hash: nothing can be brute-forced, and a slow hash (bcrypt) would
cost milliseconds on every request.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_SCHEME = "sk-il-"
#: Random characters of the key kept in the visible prefix (``sk-il-AbCdEfGh``).
PREFIX_CHARS = 8


def generate_key() -> str:
    """A new full key. Shown to its owner once; only its hash is stored."""
    return KEY_SCHEME + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The hex SHA-256 of a full key: what the database stores and the authenticator looks up."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """The part of a key that may be shown, logged and searched for."""
    return key[: len(KEY_SCHEME) + PREFIX_CHARS]


def is_virtual_key(token: str) -> bool:
    """Whether a bearer token is in our key format (as opposed to a placeholder such as ``EMPTY``)."""
    return token.startswith(KEY_SCHEME)
