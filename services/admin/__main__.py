"""Run the admin API on its own: ``python -m services.admin --config interlock.yaml --port 8001``."""

from __future__ import annotations

import argparse

import uvicorn

from interlock.settings import load_settings
from services.admin.app import create_admin_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", help="settings YAML file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(create_admin_app(settings=load_settings(args.config)), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
