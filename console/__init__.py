"""The ops console: static pages served by the gateway at ``/ui`` and the queries behind them.

``panels`` is the registry of Overview charts (one entry per chart, read from per-minute rollups); ``queries``
answers the console's API (``services/admin/console_routes.py``): panels, summary tiles, request search and
one request's trace. The pages (``static/``) draw whatever panels the API lists, with uPlot, which
``scripts/setup.sh`` installs from npm into ``static/vendor`` (nothing is fetched from a CDN at run time).
"""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"

__all__ = ["STATIC_DIR"]
