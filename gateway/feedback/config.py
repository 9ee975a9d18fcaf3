"""Settings of user feedback: the explicit endpoint and the implicit signals the gateway reads from traffic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FeedbackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """``POST /v1/feedback``: thumbs, rating, comment or edited output about a request, by the key that made it."""
    implicit: bool = False
    """Read implicit signals from traffic (regeneration, early termination, rephrase, abandonment, refusal).
    Costs a hash of each chat request's messages when it ends, so it is opt-in."""
    window: float = Field(1800, gt=0)
    """Seconds a conversation's last turn is remembered: a regeneration or rephrase must come within it."""
    abandon_after: float = Field(300, gt=0)
    """A conversation whose last answer went badly (error, refusal, cut short, or a retry) and that gets no next
    turn within this many seconds counts as abandoned."""
    similarity: float = Field(0.8, gt=0, le=1)
    """A next user turn at least this similar to the previous one (Dice coefficient of their character bigrams,
    ``signals.similar``) is a rephrase."""
    max_conversations: int = Field(100_000, ge=1)
    """Conversations remembered per gateway process at most (the oldest are forgotten first); with ``redis.url``
    the state is in Redis instead (expiring after ``window``) and this bounds the turns waiting for a batch."""
    store_content_for: list[str] = Field(default_factory=list)
    """Key ids or names, and team ids, whose prompts and outputs are stored (streamed outputs assembled), for
    ``interlock feedback export``. Empty: no content is stored, ever."""
    flush_interval: float = Field(1.0, gt=0)
    """Seconds between batched writes of implicit signals."""
