"""``RemoteGuardrails``: the guards of a guardrails service, behind ``Guardrails``' interface.

The gateway calls ``scan`` and ``check`` as it would on the embedded engine; only the texts and the rules cross
the wire (``POST /scan``), findings come back as offsets, and masking (the ``MaskMap``) stays in the gateway. A
service that is unreachable, answers an error or is slower than ``service.timeout`` is one failed guard named
``service``: ``service.on_error`` decides (``closed`` raises ``GuardFailed``, ``open`` reports it and carries on).
Guards that fail inside the service come back in ``failed`` and follow the policy's ``on_error`` as local ones do.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from guardrails.config import GuardrailsConfig, GuardRule
from guardrails.engine import Guardrails, Scan
from guardrails.errors import GuardFailed, GuardTimeout
from guardrails.types import Action, Finding, GuardContext


class RemoteGuardrails(Guardrails):
    def __init__(self, config: GuardrailsConfig) -> None:
        super().__init__(config)  # guard objects are built (cheap) but never loaded: the service holds the models
        svc = config.service
        self.service = svc
        self._client = httpx.AsyncClient(base_url=svc.url, timeout=svc.timeout)

    def load(self) -> None:
        pass

    async def aclose(self) -> None:
        await self._client.aclose()
        await super().aclose()

    async def ready(self) -> bool:
        """The service answers ``/ready`` (its guards are loaded)."""
        try:
            return (await self._client.get("/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    async def scan(
        self,
        texts: list[str],
        rules: dict[str, GuardRule],
        ctx: GuardContext,
        *,
        roles: list[str | None] | None = None,
        timeout: float = 2.0,
        on_error: str = "closed",
    ) -> Scan:
        body = {
            "texts": texts,
            "rules": {n: r.model_dump(mode="json") for n, r in rules.items()},
            "roles": roles,
            "timeout": timeout,
            "scope": ctx.scope,  # the caller (key, else team): the service memoises per scope, as the engine does
        }
        try:
            headers = {"content-type": "application/json"}
            if ctx.traceparent is not None:
                headers["traceparent"] = ctx.traceparent
            r = await self._client.post("/scan", content=orjson.dumps(body), headers=headers)
            if r.status_code != 200:
                raise GuardFailed(f"the guardrails service answered {r.status_code}", guard="service")
            data = orjson.loads(r.content)
        except (httpx.HTTPError, orjson.JSONDecodeError, GuardFailed) as exc:
            why = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
            if self.service.on_error == "closed":
                cls = GuardTimeout if why == "timeout" else GuardFailed
                raise cls(f"the guardrails service failed ({why}) and fails closed", guard="service") from exc
            return Scan([[] for _ in texts], {n: 0.0 for n in rules}, failed={"service": why})
        scan = from_json(data)
        if scan.failed and on_error == "closed":
            name, why = next(iter(scan.failed.items()))
            cls = GuardTimeout if why == "timeout" else GuardFailed
            raise cls(f"the guard '{name}' failed ({why}) and the policy fails closed", guard=name)
        return scan


def to_json(scan: Scan) -> dict[str, Any]:
    """What ``POST /scan`` answers (findings are offsets and scores, never text)."""
    return {
        "findings": [[{**f.as_dict(), "action": a.value} for f, a in found] for found in scan.findings],
        "scores": scan.scores,
        "failed": scan.failed,
        "action": scan.action.value,
        "blocked_by": scan.blocked_by.as_dict() if scan.blocked_by is not None else None,
    }


def from_json(data: dict[str, Any]) -> Scan:
    findings = [
        [(Finding(f["guard"], f["type"], f["start"], f["end"], f["score"]), Action(f["action"])) for f in found]
        for found in data["findings"]
    ]
    b = data.get("blocked_by")
    blocked = Finding(b["guard"], b["type"], b["start"], b["end"], b["score"]) if b else None
    return Scan(findings, data.get("scores", {}), data.get("failed", {}), Action(data["action"]), blocked)
