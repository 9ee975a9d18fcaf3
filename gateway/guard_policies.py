"""Guardrail policies in the database, on every replica without a restart.

    PUT /admin/policies/x ─► PolicyConfig validation (400 naming the field) ─► store (version + 1, config_version
                          + 1) ─► bus.publish (kind ``policy``): applied here before the answer; every other
                          replica reloads the stored policies and swaps its dicts in one go

Effective policies are the YAML's overlaid by the stored ones (a stored policy of the same name wins). A stored
policy names what it attaches to (``{"models": [...], "teams": [...], "keys": [...]}``); those entries are laid
over the YAML's ``attach``, and ``Guardrails.policy_for`` picks the most specific (key > team > model > default).
Stored rows that no longer validate (a guard renamed since) are left out and reported, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session, select

from gateway.access.bus import Change, ConfigBus
from gateway.access.store import _bump as bump_config_version
from gateway.db.columns import utcnow
from gateway.guard_models import PolicyRow
from guardrails import GuardConfigError, Guardrails, GuardrailsConfig, PolicyConfig

log = logging.getLogger("interlock.guardrails")
ATTACH_KINDS = ("models", "teams", "keys")
NAME_MAX = 128


def parse_policy(name: Any, body: Any) -> tuple[PolicyConfig, dict[str, list[str]]]:
    """The policy and its attachments from an admin request body; ``GuardConfigError`` names the bad field."""
    if not isinstance(name, str) or not 0 < len(name) <= NAME_MAX or name != name.strip():
        raise GuardConfigError(f"name: 1 to {NAME_MAX} characters without surrounding spaces", field="name")
    if not isinstance(body, dict):
        raise GuardConfigError("body: a JSON object (the policy, with an optional 'attach')", field="body")
    body = dict(body)
    attach = body.pop("attach", None) or {}
    if not isinstance(attach, dict) or set(attach) - set(ATTACH_KINDS):
        raise GuardConfigError(f"attach: an object with lists under {list(ATTACH_KINDS)}", field="attach")
    for kind, names in attach.items():
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise GuardConfigError(f"attach.{kind}: a list of non-empty strings", field=f"attach.{kind}")
    try:
        policy = PolicyConfig.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if not where and ": " in message:  # a model-level check names the field at the start of its message
            where = message.split(": ", 1)[0]
        raise GuardConfigError(f"{where}: {message}" if where and not message.startswith(where) else message,
                               field=where or None) from exc  # fmt: skip
    return policy, {k: list(attach.get(k, [])) for k in ATTACH_KINDS}


class PolicyStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def load(self) -> list[PolicyRow]:
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.exec(select(PolicyRow).order_by(PolicyRow.name)).all())

    def save(self, name: str, definition: dict[str, Any], attach: dict[str, list[str]]) -> tuple[int, Change]:
        with Session(self.engine) as s, s.begin():
            config_version = bump_config_version(s)
            row = s.get(PolicyRow, name)
            version = 1 if row is None else row.version + 1
            row = row or PolicyRow(name=name, definition=definition)
            row.definition, row.attach, row.version, row.updated_at = definition, attach, version, utcnow()
            s.add(row)
        return version, Change(version=config_version, kind="policy", ids=(name,))  # type: ignore[arg-type]

    def delete(self, name: str) -> Change | None:
        with Session(self.engine) as s, s.begin():
            row = s.get(PolicyRow, name)
            if row is None:
                return None
            config_version = bump_config_version(s)
            s.delete(row)
        return Change(version=config_version, kind="policy", ids=(name,))  # type: ignore[arg-type]


class PolicyRuntime:
    """Keeps ``Guardrails``' policies and attachments equal to YAML + database on this replica."""

    def __init__(self, runtime: Guardrails, engine: sa.Engine, bus: ConfigBus) -> None:
        self.runtime = runtime
        self.yaml: GuardrailsConfig = runtime.config
        self.store = PolicyStore(engine)
        self.bus = bus
        self.stored: dict[str, dict[str, Any]] = {}  # name -> {"policy", "attach", "version"}
        self.errors: dict[str, str] = {}
        self._lock = asyncio.Lock()
        bus.subscribe(self.apply)

    async def apply(self, change: Change | None) -> None:
        """Config bus handler: reload every stored policy (there are few) and swap them in."""
        if change is not None and change.kind not in ("policy", "all"):
            return
        async with self._lock:
            rows = await asyncio.to_thread(self.store.load)
            stored, errors = {}, {}
            for row in rows:
                try:
                    policy = PolicyConfig.model_validate(row.definition)
                except ValidationError as exc:
                    errors[row.name] = str(exc.errors()[0].get("msg"))
                    log.warning("stored guardrail policy %r no longer validates; left out", row.name)
                    continue
                stored[row.name] = {"policy": policy, "attach": row.attach, "version": row.version}
            self.stored, self.errors = stored, errors
            self._swap()

    def _swap(self) -> None:
        """New dicts, assigned at once: requests in flight keep the policy they resolved."""
        y = self.yaml
        policies = {**y.policies, **{n: s["policy"] for n, s in self.stored.items()}}
        attach = {kind: dict(getattr(y.attach, kind)) for kind in ATTACH_KINDS}
        for name, s in self.stored.items():
            for kind in ATTACH_KINDS:
                for target in s["attach"].get(kind, ()):
                    attach[kind][target] = name
        r = self.runtime
        # ``Guardrails.policy_for`` reads these (guardrails/AGENTS.md: a store swaps them on a bus message).
        r.config = y.model_copy(update={"policies": policies})
        r._by_key, r._by_team, r._by_model = attach["keys"], attach["teams"], attach["models"]
        r._default = policies.get(y.attach.default) if y.attach.default else None
        r.attached = bool(attach["keys"] or attach["teams"] or attach["models"] or r._default)

    def describe(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for n, policy in sorted(self.runtime.config.policies.items()):
            if name is not None and n != name:
                continue
            s = self.stored.get(n)
            attach = s["attach"] if s else _yaml_attach(self.yaml, n)
            out.append(
                {
                    "name": n,
                    "source": "database" if s else "yaml",
                    "version": s["version"] if s else None,
                    "policy": policy.model_dump(mode="json"),
                    "attach": attach,
                }
            )
        return out

    async def put(self, name: str, body: Any) -> dict[str, Any]:
        policy, attach = parse_policy(name, body)
        definition = policy.model_dump(mode="json", exclude_defaults=True)
        version, change = await asyncio.to_thread(self.store.save, name, definition, attach)
        await self.bus.publish(change)
        if self.stored.get(name, {}).get("version") != version:  # the bus could not apply it here: do it now
            await self.apply(change)
        return self.describe(name)[0]

    async def delete(self, name: str) -> bool:
        change = await asyncio.to_thread(self.store.delete, name)
        if change is None:
            return False
        await self.bus.publish(change)
        if name in self.stored:
            await self.apply(change)
        return True


def _yaml_attach(config: GuardrailsConfig, name: str) -> dict[str, list[str]]:
    return {kind: sorted(t for t, p in getattr(config.attach, kind).items() if p == name) for kind in ATTACH_KINDS}


async def start_policies(gateway: Any, runtime: Guardrails) -> PolicyRuntime:
    """Stored policies loaded before the first request, then followed over the config bus."""
    policies = PolicyRuntime(runtime, gateway.engine, gateway.access.bus)
    await policies.apply(None)
    gateway.guard_policies = policies
    return policies
