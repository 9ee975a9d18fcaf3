"""User Y never gets user X's answer unless the scope says they share: exact and semantic, per scope."""

from __future__ import annotations

import pytest

from tests.e2e.cache.conftest import ask, until

Q = "How do I reverse a list in Python?"
#: The same question in other words: a semantic hit within a partition, never across one.
SAME = "How can I reverse a Python list?"


def cache(scope: str) -> dict:
    return {"scope": scope, "exact": {"ttl": 600}, "semantic": {"enabled": True, "ttl": 600}}


def outcome(url: str, caller: str, question: str, **kw) -> str:
    return ask(url, caller, question, **kw).headers["x-interlock-cache"]


def test_when_scope_is_key_then_only_the_same_key_shares_answers(gateway):
    url = gateway(cache("key"))
    ask(url, "x", Q)
    until(lambda: ask(url, "x", Q), "hit-exact")
    assert outcome(url, "y", Q) == "miss"  # same team, other key: exact
    assert outcome(url, "z", SAME) == "miss"  # semantically identical, other key
    r = ask(url, "x", SAME)
    assert r.headers["x-interlock-cache"] == "hit-semantic"
    assert float(r.headers["x-interlock-cache-similarity"]) >= 0.86


def test_when_scope_is_team_then_teammates_share_and_other_teams_do_not(gateway):
    url = gateway(cache("team"))
    source = ask(url, "x", Q).headers["x-request-id"]
    until(lambda: ask(url, "y", Q), "hit-exact")  # teammate: exact hit
    assert outcome(url, "y", SAME) == "hit-semantic"
    assert outcome(url, "z", SAME) == "miss"  # other team: not semantically
    r = ask(url, "z", Q)  # nor exactly (a hit here can only be z's own answer to SAME, stored meanwhile)
    assert r.headers["x-interlock-cache"] in ("miss", "hit-semantic")
    assert r.headers.get("x-interlock-cache-source") != source


def test_when_scope_is_user_then_only_the_same_end_user_of_the_same_key_shares(gateway):
    url = gateway(cache("user"))
    ask(url, "x", Q, user="alice")
    until(lambda: ask(url, "x", Q, user="alice"), "hit-exact")
    assert outcome(url, "x", Q, user="bob") == "miss"
    assert outcome(url, "x", SAME, user="carol") == "miss"
    assert outcome(url, "y", Q, user="alice") == "miss"  # another key's "alice" is another person
    assert outcome(url, "x", SAME, user="alice") == "hit-semantic"
    assert outcome(url, "x", Q) == "bypass"  # no user named: not cached under this scope


def test_when_scope_is_global_then_everyone_shares_but_not_answers_with_personal_data(gateway):
    url = gateway(cache("global"))
    ask(url, "x", Q)
    until(lambda: ask(url, "z", Q), "hit-exact")
    assert outcome(url, "z", SAME) == "hit-semantic"
    mail = "Write a short thank-you note to jane.doe@example.com"
    assert outcome(url, "x", mail) == "bypass"
    assert outcome(url, "z", mail) == "bypass"


@pytest.mark.parametrize(
    "other",
    [
        "How do I reverse a list in Java?",  # a different name
        "How do I not reverse a list in Python?",  # a negation
        "How do I reverse 2 lists in Python?",  # a number
    ],
)
def test_when_a_near_question_differs_in_a_name_negation_or_number_then_it_is_not_served(gateway, other):
    url = gateway(cache("key"))
    ask(url, "x", Q)
    until(lambda: ask(url, "x", Q), "hit-exact")
    assert outcome(url, "x", other) == "miss"
