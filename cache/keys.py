"""Partition and exact keys: everything that changes the answer is hashed into them.

A *partition* is who may share an entry (the scope owner) plus everything except the last user turn that
decides the answer: model, route, system prompt, earlier turns, sampling parameters, tools, ``response_format``
and any other field vLLM reads. The semantic index only ever searches within one partition, so a similarity
search can never cross tenants or configurations: isolation is applied before the search, not after it.
The *exact key* adds the last user turn (or the prompt) to the partition.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import orjson

#: Body fields that do not change the answer's content: how it is delivered (stream), who asks (scope decides
#: that), and which model (hashed separately). Everything else, unknown fields included, is part of the key.
_NOT_KEYED = frozenset({"messages", "prompt", "stream", "stream_options", "user", "model"})


class CacheKey(NamedTuple):  # a tuple, not a frozen dataclass: built on every request, cheaper to make
    scope: str
    """``key`` / ``team`` / ``user`` / ``global``."""
    owner: str
    """Who shares the entry under that scope: the key id, team id, end user, or ``*``."""
    model: str
    partition: str
    """Hex digest of the partition (scope owner + everything but the last user turn)."""
    exact: str
    """Hex digest of the partition plus the last user turn."""
    query: str
    """The last user turn (or the prompt): what the semantic cache embeds. Never stored or logged."""


def split_messages(messages: list[Any]) -> tuple[list[Any], Any]:
    """(every message but the last user turn, the last user turn's content)."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "user":
            return messages[:i] + messages[i + 1 :], m.get("content")
    return list(messages), None


def query_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def make_key(route: str, body: dict[str, Any], model: str, scope: str, owner: str) -> CacheKey:
    """The keys of one request; ``owner`` must already be resolved for ``scope`` (see ``scope_owner``)."""
    params = {k: v for k, v in body.items() if k not in _NOT_KEYED}
    if route == "chat":
        context, last = split_messages(body.get("messages") or [])
        query = query_text(last)
    else:
        context, last = [], body.get("prompt")
        query = last if isinstance(last, str) else ""
    # One JSON array is unambiguous (no field can run into the next), so one serialisation and one digest make
    # the partition; the exact key chains it with the last turn. Half the CPU of hashing each part apart, on
    # every request of a cached model (exact hits included).
    opts = orjson.OPT_SORT_KEYS
    partition = hashlib.blake2b(
        orjson.dumps((scope, owner, model, route, params, context), option=opts), digest_size=16
    ).digest()
    exact = hashlib.blake2b(partition + orjson.dumps(last, option=opts), digest_size=16).hexdigest()
    return CacheKey(scope, owner, model, partition.hex(), exact, query)


def scope_owner(scope: str, key_id: str | None, team_id: str | None, user: Any) -> str | None:
    """Who shares entries under ``scope`` for this caller; ``None``: this request cannot be cached there."""
    if scope == "key":
        # Keys off: every caller is the same anonymous principal, so they share one scope (one tenant).
        return key_id or "(anonymous)"
    if scope == "team":
        return team_id
    if scope == "user":
        # The end user is named by the client, so it is only trusted within the key that names it.
        return f"{key_id or '(anonymous)'}/{user}" if isinstance(user, str) and user else None
    return "*"
