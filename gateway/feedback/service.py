"""Feedback in the gateway: ``submit`` serves ``POST /v1/feedback``; ``step`` (a pipeline step, with ``implicit``)
hands each finished chat request to the ``SignalDetector`` and stores what it finds, in batches off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.errors import InvalidRequest, NotFound
from gateway.feedback.config import FeedbackConfig
from gateway.feedback.signals import Signal, SignalDetector, is_refusal
from gateway.feedback.store import FeedbackStore
from gateway.feedback.streams import AssembledStream
from gateway.pipeline import Handler
from gateway.types import Principal, RequestContext, UpstreamResponse

log = logging.getLogger("interlock.feedback")

_FIELDS = {"request_id", "thumbs", "rating", "comment", "edited_output"}
#: How long ``submit`` waits for a record this process does not remember (another worker's) to be written.
RECORD_WAIT = 3.0
#: Records remembered per process for feedback (about 5 minutes of 150 requests a second).
RECENT = 50_000
#: What feedback needs of a record (``FeedbackStore.record_of`` reads the same columns). Only these are kept:
#: whole records (details included) were ~1.6 KB each, 80 MB per worker once 50,000 were remembered.
DIMENSIONS = ("key_id", "team_id", "model", "route", "prompt_version", "trace_id")


def parse(body: Any) -> dict[str, Any]:
    """Check a feedback body; the 400 names the field."""
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    unknown = sorted(body.keys() - _FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown field '{unknown[0]}'; fields are {sorted(_FIELDS)}.", param=unknown[0])
    rid = body.get("request_id")
    if not isinstance(rid, str) or not rid or len(rid) > 128:
        raise InvalidRequest(
            "'request_id' is required: the x-interlock-request-id of the response.", param="request_id"
        )
    thumbs, rating = body.get("thumbs"), body.get("rating")
    if thumbs is not None and thumbs not in ("up", "down"):
        raise InvalidRequest("'thumbs' must be 'up' or 'down'.", param="thumbs")
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5):
        raise InvalidRequest("'rating' must be an integer from 1 to 5.", param="rating")
    for name, most in (("comment", 4000), ("edited_output", 100_000)):
        v = body.get(name)
        if v is not None and (not isinstance(v, str) or len(v) > most):
            raise InvalidRequest(f"'{name}' must be a string of at most {most} characters.", param=name)
    if all(body.get(f) is None for f in ("thumbs", "rating", "comment", "edited_output")):
        raise InvalidRequest("Send at least one of 'thumbs', 'rating', 'comment', 'edited_output'.", param="thumbs")
    if thumbs is not None:
        kind = "positive" if thumbs == "up" else "negative"
    elif rating is not None:
        kind = "positive" if rating >= 4 else "negative" if rating <= 2 else "rating"
    else:
        kind = "edit" if body.get("edited_output") is not None else "comment"
    return {
        "request_id": rid,
        "kind": kind,
        "rating": rating,
        "comment": body.get("comment"),
        "edited_output": body.get("edited_output"),
    }


class Feedback:
    def __init__(self, config: FeedbackConfig, engine, metrics, *, redis_url: str | None = None) -> None:
        self.config = config
        self.store = FeedbackStore(engine)
        self.metrics = metrics
        self.detector = SignalDetector(config.window, config.abandon_after, config.similarity, config.max_conversations)
        #: With Redis the conversations' state is shared by the replicas (``turns.py``); finished requests wait in
        #: ``_observed`` for the next flush (one round trip per batch, none on the request path).
        self._turns = None
        if config.implicit and redis_url:
            from gateway.feedback.turns import RedisTurns

            self._turns = RedisTurns(redis_url, self.detector)
        self._observed: list = []
        self._content_for = frozenset(config.store_content_for)
        self._pending: list[Signal] = []
        self._content: list[dict[str, Any]] = []
        self._task: asyncio.Task | None = None
        #: The newest records of this process, by id: feedback often comes right after the answer, before the
        #: recorder (at idle priority, behind under load) has written the record. A dict store per request.
        self._recent: OrderedDict[str, tuple] = OrderedDict()

    async def start(self) -> None:
        if self.config.implicit or self._content_for:  # signals and opted-in content are written in batches
            self._task = asyncio.create_task(self._run(), name="interlock-feedback")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            if self._turns is not None:
                with contextlib.suppress(Exception):  # best effort: the gateway is closing
                    await self._detect()
            await self._flush()  # what was found in the last interval
        if self._turns is not None:
            await self._turns.aclose()

    # -- explicit ------------------------------------------------------------------------------------------

    async def submit(self, principal: Principal, body: Any) -> dict[str, Any]:
        """Store one piece of feedback about a request of ``principal``'s key. An unknown request and another
        key's request get the same 404, so ids of other keys cannot be probed."""
        row = parse(body)
        record = await self._record(row["request_id"])
        if record is None or record["key_id"] != principal.key_id:
            raise NotFound("No request with this id was made with this key.", param="request_id")
        row.update(trace_id=record["trace_id"], key_id=record["key_id"], source="explicit")
        (fid,) = await asyncio.to_thread(self.store.write, [(row, record)])
        self._count(row["kind"], record)
        return {"id": fid, "object": "feedback", "request_id": row["request_id"], "kind": row["kind"]}

    def remember(self, record: dict[str, Any]) -> None:
        """Hot path (when feedback is on): keep the record just submitted for the journal."""
        recent = self._recent
        recent[record["id"]] = tuple([record.get(k) for k in DIMENSIONS])
        if len(recent) > RECENT:
            recent.popitem(last=False)

    async def _record(self, request_id: str) -> dict[str, Any] | None:
        kept = self._recent.get(request_id)
        if kept is not None:
            return {"id": request_id, **dict(zip(DIMENSIONS, kept, strict=True))}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECORD_WAIT
        while True:
            found = await asyncio.to_thread(self.store.record_of, request_id)
            if found is not None or loop.time() >= deadline:
                return found
            await asyncio.sleep(0.2)  # just answered: its record is still in the batch

    # -- implicit ------------------------------------------------------------------------------------------

    async def step(self, ctx: RequestContext, call_next: Handler) -> Any:
        """Pipeline step (with ``implicit`` or ``store_content_for``): watch chat requests end; read refusals and
        opted-in content from complete answers, and from streamed ones once their text is assembled. It runs
        inside the guardrails step (``Gateway.start`` adds it after): the messages it stores are the PII guard's
        masked ones and the output is the model's, before unmasking, so stored content is never raw PII."""
        if ctx.route != "chat":
            return await call_next(ctx)
        if self.config.implicit:
            ctx.on_finish.append(self._finished)
        result = await call_next(ctx)
        if isinstance(result, UpstreamResponse):
            self._inspect(ctx, result.body)
            return result
        if self.config.implicit or self._wants_content(ctx.principal):  # a stream: assemble only when needed
            return AssembledStream(result, ctx, self._inspect)
        return result

    def _wants_content(self, p: Principal) -> bool:
        wanted = self._content_for
        return bool(wanted) and (p.key_id in wanted or p.key_name in wanted or p.team_id in wanted)

    def _inspect(self, ctx: RequestContext, raw: bytes) -> None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(body, dict):
            return
        if is_refusal(body):
            ctx.notes["refusal"] = True
        p = ctx.principal
        if self._wants_content(p):
            choices = body.get("choices") or [{}]
            output = (choices[0].get("message") or {}).get("content") if isinstance(choices[0], dict) else None
            self._content.append(
                {
                    "request_id": ctx.request_id,
                    "created_at": datetime.now(UTC),
                    "key_id": p.key_id,
                    "messages": ctx.body["messages"],
                    "output": output,
                }
            )

    def _finished(self, ctx: RequestContext) -> None:
        if self._turns is not None:
            obs = self.detector.observation(ctx)
            if obs is not None and len(self._observed) < self.config.max_conversations:  # bounded if Redis hangs
                self._observed.append(obs)
            return
        signals = self.detector.observe(ctx)
        if signals:
            self._pending.extend(signals)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval)
            try:
                await self._detect()
            except Exception:  # Redis is down or slow: the signals of this interval are lost, not the requests
                log.warning("feedback: the shared conversation state is unavailable", exc_info=True)
            try:
                await self._flush()
            except Exception:  # never let the task die; the signals of this interval are lost, not the requests
                log.exception("feedback: writing implicit signals failed")

    async def _detect(self) -> None:
        if self._turns is None:
            self._pending.extend(self.detector.sweep())
            return
        batch, self._observed = self._observed, []
        self._pending.extend(await self._turns.observe(batch))
        self._pending.extend(await self._turns.sweep())

    async def _flush(self) -> None:
        signals, self._pending = self._pending, []
        content, self._content = self._content, []
        items = []
        for s in signals:
            t = s.turn
            dims = {"key_id": t.key_id, "team_id": t.team_id, "model": t.model, "route": t.route,
                    "prompt_version": t.prompt_version}  # fmt: skip
            row = {"request_id": t.request_id, "trace_id": t.trace_id, "key_id": t.key_id, "kind": s.kind,
                   "source": "implicit", "related_request_id": s.related_request_id}  # fmt: skip
            items.append((row, dims))
            self._count(s.kind, dims)
        if items:
            await asyncio.to_thread(self.store.write, items)
        if content:
            await asyncio.to_thread(self.store.write_content, content)

    def _count(self, kind: str, dims: dict[str, Any]) -> None:
        self.metrics.count_feedback(kind, dims["model"], dims["route"], dims["prompt_version"])
