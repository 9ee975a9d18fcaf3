from __future__ import annotations

import hashlib

from gateway.access import generate_key, hash_key, key_prefix
from gateway.access.keys import is_virtual_key


def test_when_a_key_is_generated_then_it_has_the_scheme_and_32_random_bytes():
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert key.startswith("sk-il-")
        assert len(key) == len("sk-il-") + 43  # urlsafe base64 of 32 bytes, unpadded
        assert is_virtual_key(key)


def test_when_a_key_is_hashed_then_it_is_its_hex_sha256():
    key = generate_key()
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()


def test_when_the_prefix_is_taken_then_it_shows_eight_random_characters():
    key = "sk-il-AbCdEfGhIjKlMnOp"
    assert key_prefix(key) == "sk-il-AbCdEfGh"


def test_when_a_token_is_a_placeholder_then_it_is_not_a_virtual_key():
    assert not is_virtual_key("EMPTY")
    assert not is_virtual_key("sk-proj-abc")
