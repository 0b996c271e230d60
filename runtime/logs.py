"""Structured logs: one JSON object per line, for the server log and the access log.

The server log (plumbline.*, uvicorn.*) goes to stderr; the access log (access_log.py)
to stdout, so a platform can route or drop them separately.
"""
from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, str) and record.msg.startswith("{") and not record.args:
            return record.msg  # already a JSON object (the pool logs that way)
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if isinstance(record.msg, dict):
            entry.update(record.msg)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure(level: str) -> None:
    formatter = JsonFormatter()
    server = logging.StreamHandler(sys.stderr)
    server.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [server]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
