"""Child-process entry point used by ``EmulatorServer``: ``python -m interlock.emulator --fd N --options JSON``.

People start the emulator with ``interlock emulator``; this entry point only takes a listening socket
inherited from the parent and the options as JSON, so the parent knows the port before the child runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time

from interlock.emulator.options import EmulatorOptions
from interlock.emulator.server import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m interlock.emulator")
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    parser.add_argument("--options", required=True, help="EmulatorOptions as JSON")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    args = parser.parse_args()
    if args.parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    run(EmulatorOptions.from_dict(json.loads(args.options)), fd=args.fd)


def _exit_with_parent(parent: int) -> None:
    """A test run killed hard must not leave emulators behind holding ports: stop once we are orphaned."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    main()
