"""A fast, faithful emulator of vLLM's OpenAI-compatible server: the one test double of Interlock.

Use ``EmulatorServer`` in tests and benchmarks, ``interlock emulator`` on the command line. Module map:
``app`` (ASGI routes), ``validation`` (request checks), ``generation`` (tokens and text), ``responses``
and ``protocol`` (vLLM's JSON shapes), ``generate`` (timing and streaming), ``embeddings``, ``faults``,
``engine`` (scheduler and counters), ``metrics`` (Prometheus), ``server`` (processes), ``command`` (CLI).
"""

from interlock.emulator.app import EmulatorApp
from interlock.emulator.faults import Fault, parse_fault
from interlock.emulator.generation import chat_prompt_tokens, text_tokens
from interlock.emulator.options import EmulatorOptions
from interlock.emulator.server import EmulatorServer, run

__all__ = [
    "EmulatorApp",
    "EmulatorOptions",
    "EmulatorServer",
    "Fault",
    "chat_prompt_tokens",
    "parse_fault",
    "run",
    "text_tokens",
]
