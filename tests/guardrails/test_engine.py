"""``Scan.mask``: a value masked in one text of a request is masked wherever it appears in the others; the order in
which guards send work to the worker processes."""

from __future__ import annotations

from guardrails import Action, Finding, GuardContext, Guardrails, GuardrailsConfig, GuardRule, MaskMap, Scan


def test_when_a_value_is_found_in_one_message_then_it_is_masked_in_every_message_as_a_whole_word():
    texts = ["You help Ana Lima.", "I am Ana Lima", "Banana Lima-Ana? no: Ana Lima!"]
    scan = Scan([[], [(Finding("pii", "PERSON", 5, 13, 0.9), Action.MASK)], []])
    assert scan.mask(texts, MaskMap()) == [
        "You help [PERSON_1].",
        "I am [PERSON_1]",
        "Banana Lima-Ana? no: [PERSON_1]!",
    ]


def test_when_a_finding_is_only_allowed_then_it_stays_in_clear():
    scan = Scan([[(Finding("pii", "DATE_TIME", 0, 6, 0.9), Action.ALLOW)]])
    assert scan.mask(["Monday it is"], MaskMap()) == ["Monday it is"]


async def test_when_guards_send_work_to_the_workers_then_the_injection_first_stage_goes_before_the_others():
    """The workers take jobs in order: the first stage must not queue behind the other guards' work, since a suspect
    prompt's embedding waits for it (the policy lists ``secrets`` first)."""
    sent: list[str] = []

    async def offload(fn, *args):  # the workers' seam, run here: records the order work is sent in
        sent.append(fn.__name__)
        return fn(*args)

    runtime = Guardrails(GuardrailsConfig(enabled=True, pii={"workers": 0}))
    rules = {"secrets": GuardRule(action="mask"), "injection": GuardRule(action="block")}
    text = "Please summarise this report. " * 200  # long: secrets scans it in the workers too
    scan = await runtime.scan([text, text], rules, GuardContext(offload=offload))
    assert sent == ["first_stage_in_worker"] * 2 + ["find_patterns"] * 2
    assert scan.action is Action.ALLOW and scan.scores["injection"] < 0.3  # cleared by the first stage alone
