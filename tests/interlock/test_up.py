"""``interlock up``'s embedded configuration."""

from __future__ import annotations

import logging

from gateway.limits import Pricing
from gateway.types import Usage
from interlock.commands.up import MODEL_NAME, embedded_settings
from interlock.settings import load_settings


def test_when_up_serves_the_local_model_then_it_costs_nothing_and_no_price_warning_is_logged(caplog):
    settings = load_settings(None, **embedded_settings("http://127.0.0.1:8100", 8000, "sqlite:///unused.db"))
    pricing = Pricing(settings.models)
    with caplog.at_level(logging.WARNING):
        assert pricing.known(MODEL_NAME)
    assert pricing.cost(MODEL_NAME, Usage(prompt_tokens=1000, completion_tokens=1000)) == 0
    assert "no price" not in caplog.text
