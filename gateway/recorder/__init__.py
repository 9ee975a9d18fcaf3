"""The recorder: a process beside each gateway process that writes its request records to the database and
exports its spans, so that none of that work shares the gateway's GIL with the event loop.

``process.RecorderProcess`` is the gateway's handle (start, feed spans, supervise); ``main`` is the
process itself (``python -m gateway.recorder``); ``records`` ships the gateway's journal into SQL.
"""

from gateway.recorder.process import RecorderProcess

__all__ = ["RecorderProcess"]
