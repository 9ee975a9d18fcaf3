"""Bad definitions are refused naming the field an admin has to fix."""

from __future__ import annotations

import copy

import pytest

from router.intent import DefinitionError, parse_definition
from tests.router.intent.conftest import SUPPORT


def _bad(change) -> dict:
    d = copy.deepcopy(SUPPORT)
    change(d)
    return d


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["intents"][1].update(examples=[]), "intents[1].examples"),
        (lambda d: d["intents"][2].update(examples=["  "]), "intents[2].examples"),
        (lambda d: d["intents"][3].update(name="track_order"), "intents[3].name"),
        (lambda d: d["intents"][0].update(target={}), "intents[0].target"),
        (lambda d: d["intents"][0].update(target={"reply": "a", "url": "https://x"}), "intents[0].target"),
        (lambda d: d["intents"][0].update(target={"url": "ftp://x"}), "intents[0].target.url"),
        (lambda d: d.update(intents=[]), "intents"),
        (lambda d: d.update(colour="blue"), "colour"),
    ],
)
def test_when_a_definition_is_bad_then_the_error_names_the_field(change, field):
    with pytest.raises(DefinitionError) as err:
        parse_definition(_bad(change))
    assert err.value.param == field
    assert err.value.message.startswith(field)


def test_when_a_target_names_an_unknown_model_then_the_error_names_the_tier():
    d = parse_definition(SUPPORT)
    d.check_models({"strong", "cheap"})
    with pytest.raises(DefinitionError) as err:
        d.check_models({"strong"})
    assert err.value.param == "intents[0].target.tiers[0].model"
    assert "'cheap'" in err.value.message
