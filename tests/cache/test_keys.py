"""Partitions: everything that changes the answer separates entries; delivery (stream) does not."""

from __future__ import annotations

import pytest

from cache import make_key, scope_owner

BASE = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0}


def key(body=None, scope="key", owner="k1", model="m"):
    return make_key("chat", body or BASE, model, scope, owner)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.0001},
        {"max_tokens": 5},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"response_format": {"type": "json_object"}},
        {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]},
        {
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Yo"},
                {"role": "user", "content": "Hi"},
            ]
        },
        {"some_vllm_extra": 1},
    ],
)
def test_when_anything_but_the_last_turn_changes_then_the_partition_changes(change):
    assert key({**BASE, **change}).partition != key().partition


def test_when_only_the_last_user_turn_changes_then_the_partition_is_shared_and_the_exact_key_is_not():
    other = key({**BASE, "messages": [{"role": "user", "content": "Hello"}]})
    assert other.partition == key().partition and other.exact != key().exact
    assert other.query == "Hello"


def test_when_scope_owner_or_model_differ_then_nothing_is_shared():
    keys = [key(), key(owner="k2"), key(scope="team", owner="k1"), key(model="m2")]
    assert len({k.partition for k in keys}) == 4 and len({k.exact for k in keys}) == 4


def test_when_only_delivery_or_user_differ_then_the_keys_are_equal():
    assert key({**BASE, "stream": True, "stream_options": {"include_usage": True}, "user": "u"}) == key()


@pytest.mark.parametrize(
    ("scope", "key_id", "team_id", "user", "owner"),
    [
        ("key", "k1", "t1", None, "k1"),
        ("key", None, None, None, "(anonymous)"),
        ("team", "k1", "t1", None, "t1"),
        ("team", "k1", None, None, None),
        ("user", "k1", "t1", "alice", "k1/alice"),
        ("user", "k1", "t1", None, None),
        ("user", "k1", "t1", "", None),
        ("global", "k1", "t1", "alice", "*"),
    ],
)
def test_when_a_scope_is_resolved_then_its_owner_is_the_one_who_may_share(scope, key_id, team_id, user, owner):
    assert scope_owner(scope, key_id, team_id, user) == owner
