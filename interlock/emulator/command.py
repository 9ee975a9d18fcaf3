"""``interlock emulator``: serve the vLLM emulator from the command line.

Example: ``interlock emulator --port 8100 --ttft-ms 20 --tpot-ms 5 --served-model-name llama --fault-rate 0.05
--fault status:503 --fault cut:3``. Every latency and fault flag can also be set per request with an
``x-emulator-*`` header (see ``interlock/emulator/options.py``).
"""

from __future__ import annotations

import click

from interlock.emulator.faults import parse_fault


def _check_fault(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    for spec in value:
        try:
            parse_fault(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
    return list(value)


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=int)
@click.option("--model", default="interlock/emulator", show_default=True, help="Model path shown as `root`.")
@click.option("--served-model-name", "served_model_names", multiple=True, help="Repeat for several names.")
@click.option("--max-model-len", default=8192, show_default=True, type=int)
@click.option("--max-num-seqs", default=256, show_default=True, type=int, help="Requests running at once.")
@click.option("--kv-cache-tokens", default=65536, show_default=True, type=int)
@click.option("--ttft-ms", default=0.0, show_default=True, type=float, help="Time to first token.")
@click.option("--tpot-ms", default=0.0, show_default=True, type=float, help="Time per output token.")
@click.option("--output-tokens", default=16, show_default=True, type=int, help="Natural output length.")
@click.option("--max-logprobs", default=20, show_default=True, type=int, help="Most logprobs per token.")
@click.option("--embedding-dim", default=384, show_default=True, type=int)
@click.option("--fault", "faults", multiple=True, callback=_check_fault, help="Fault kind for --fault-rate.")
@click.option("--fault-rate", default=0.0, show_default=True, type=click.FloatRange(0.0, 1.0))
@click.option("--fault-seed", default=None, type=int)
@click.option("--record-requests", default=200, show_default=True, type=int)
@click.option("--log-level", default="warning", show_default=True)
def emulator(served_model_names: tuple[str, ...], **kwargs: object) -> None:
    """Serve an emulated vLLM OpenAI-compatible server (no GPU, deterministic output)."""
    from interlock.emulator.options import EmulatorOptions
    from interlock.emulator.server import run

    options = EmulatorOptions(served_model_names=list(served_model_names), **kwargs)  # type: ignore[arg-type]
    click.echo(f"vLLM emulator on http://{options.host}:{options.port} serving {options.served_model_names}")
    run(options)
