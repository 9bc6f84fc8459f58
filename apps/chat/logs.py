"""JSON log lines on stdout (one object per line, for CloudWatch / Fluent Bit). Prompt and answer
text are never logged, nor the API key: call sites pass counts and timings only."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER_NAME = "apps.chat"
# Attributes every LogRecord has; anything else was passed with extra= and is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "color_message" and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__  # the type only: messages can carry request data
        return json.dumps(line, default=str, separators=(",", ":"))


def setup_logging(level: str) -> logging.Logger:
    """JSON on stdout for the app and uvicorn's own loggers (uvicorn's access log is off: the app
    logs one line per request itself)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    for name in (LOGGER_NAME, "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    return logging.getLogger(LOGGER_NAME)
