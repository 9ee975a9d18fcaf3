"""What admins define: a router with intents (examples and a target each) and an out-of-scope branch.

A target is exactly one of::

    {"model": "name", "tiers": [{"model": "cheap", "max_difficulty": 0.35}]}   # tiers are optional
    {"reply": "stock text"}
    {"clarify": "a question back to the user"}
    {"human": {"queue": "billing", "reply": "A person will get back to you."}}
    {"url": "https://help.example.com/cards"}

Validation errors name the field the way the admin wrote it (``intents[1].examples``), so the admin API can
answer 400 with ``param`` set.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from router.intent.errors import DefinitionError

# Names travel in response headers: printable ASCII, no surrounding spaces.
_NAME = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tier(_Strict):
    model: str
    """A cheaper model for queries whose estimated difficulty is at most ``max_difficulty``."""
    max_difficulty: float = Field(ge=0, le=1)


class Human(_Strict):
    queue: str = Field(min_length=1, max_length=128)
    """The queue a person picks the handoff up from (recorded, listed in the admin API, sent to the webhook)."""
    reply: str = Field("Thank you. A member of our team will get back to you shortly.", min_length=1)
    """What the user is told at once."""


class Target(_Strict):
    """Where a decision sends the query: exactly one of the fields below."""

    model: str | None = None
    tiers: list[Tier] = Field(default_factory=list)
    """Cost tiers for a ``model`` target, checked in order: the first whose ``max_difficulty`` covers the query."""
    reply: str | None = None
    clarify: str | None = None
    human: Human | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Target:
        kinds = [k for k in ("model", "reply", "clarify", "human", "url") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a target is exactly one of model, reply, clarify, human, url (got {kinds or 'none'})")
        if self.tiers and self.model is None:
            raise ValueError("tiers: only a model target has cost tiers")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url: must start with http:// or https://")
        return self

    @property
    def kind(self) -> Literal["model", "reply", "clarify", "human", "url"]:
        for k in ("model", "reply", "clarify", "human", "url"):
            if getattr(self, k) is not None:
                return k  # type: ignore[return-value]
        raise AssertionError("validated target has a kind")

    def models(self) -> list[str]:
        return [] if self.model is None else [self.model, *(t.model for t in self.tiers)]

    def public(self) -> dict:
        """The target as the API shows it (no empty fields)."""
        return self.model_dump(exclude_none=True, exclude_defaults=True) or self.model_dump(exclude_none=True)


class Intent(_Strict):
    name: str
    examples: list[str] = Field(min_length=1)
    """Utterances users send for this intent, from 5 to thousands."""
    target: Target
    clarify: str | None = None
    """The question to ask when this intent and another are too close to call (default: the router's)."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("printable ASCII without surrounding spaces, 1 to 128 characters")
        return v

    @field_validator("examples")
    @classmethod
    def _examples(cls, v: list[str]) -> list[str]:
        kept = [e.strip() for e in v if isinstance(e, str) and e.strip()]
        if not kept:
            raise ValueError("needs at least one non-empty example")
        return kept


class OutOfScope(_Strict):
    target: Target = Field(
        default_factory=lambda: Target(reply="Sorry, I can't help with that here.")  # type: ignore[call-arg]
    )
    examples: list[str] = Field(default_factory=list)
    """Optional utterances the app must not answer; trained as a class of their own."""


class RouterDefinition(_Strict):
    intents: list[Intent] = Field(min_length=1)
    out_of_scope: OutOfScope = Field(default_factory=OutOfScope)
    clarify: str = "Could you tell me a bit more? Do you mean {options}?"
    """The question when two intents are too close; ``{options}`` becomes "card arrival or card delivery"."""
    ambiguity_margin: float = Field(0.1, ge=0, le=1)
    """Two best intents whose calibrated confidences differ by less than this are "too close": clarify."""

    @model_validator(mode="after")
    def _unique(self) -> RouterDefinition:
        seen: set[str] = set()
        for i, intent in enumerate(self.intents):
            if intent.name in seen:
                raise ValueError(f"intents[{i}].name: duplicate intent name {intent.name!r}")
            seen.add(intent.name)
        return self

    def models(self) -> set[str]:
        names = {m for i in self.intents for m in i.target.models()}
        return names | set(self.out_of_scope.target.models())

    def check_models(self, known: Collection[str]) -> None:
        """``DefinitionError`` naming the field of the first target that names a model not in ``known``."""
        places = [(f"intents[{i}].target", it.target) for i, it in enumerate(self.intents)]
        places.append(("out_of_scope.target", self.out_of_scope.target))
        for where, target in places:
            for j, name in enumerate(target.models()):
                if name not in known:
                    field = f"{where}.model" if j == 0 else f"{where}.tiers[{j - 1}].model"
                    raise DefinitionError(f"{field}: unknown model {name!r}", param=field)


def parse_definition(data: object) -> RouterDefinition:
    """Validate a definition from JSON or YAML; ``DefinitionError`` names the first offending field."""
    try:
        return RouterDefinition.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _field(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if ": " in msg and msg.split(": ", 1)[0].startswith(("intents[", "tiers", "url")):
            field_in_msg, msg = msg.split(": ", 1)
            field = field_in_msg if field_in_msg.startswith("intents[") else f"{field}.{field_in_msg}".lstrip(".")
        raise DefinitionError(f"{field}: {msg}", param=field) from exc


def _field(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"
