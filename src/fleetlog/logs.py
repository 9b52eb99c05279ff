"""Structured (key=value) logs that never carry a secret.

Code logs with :func:`log_event`, naming the event and its fields. Every line
passes through a redactor before it is written: known secret values (tokens,
``TOKEN``, passwords, the encryption key) registered with :func:`register_secret`
and anything shaped like a Tesla token are replaced by ``[redacted]``. The
redactor is the safety net; code still must not log secrets on purpose.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

REDACTED = "[redacted]"

# Shapes of Tesla credentials: JWT access tokens, opaque refresh/access tokens with
# a regional prefix, and `token=`/`Bearer` values in URLs and headers.
_TOKEN_SHAPES = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|\b(?:qts|eu|cn|na)-[A-Za-z0-9_-]{16,}"
    r"|(?<=[?&]token=)[^&\s\"']+"
    r"|(?<=Bearer )[^\s\"',]+",
    re.IGNORECASE,
)

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def register_secret(*values: str | None) -> None:
    """Add values that must never appear in a log line (short values are ignored)."""
    global _secret_pattern
    with _lock:
        for value in values:
            if value and len(value) >= 4:
                _secrets.add(value)
        if _secrets:
            alternatives = sorted(_secrets, key=len, reverse=True)
            _secret_pattern = re.compile("|".join(re.escape(s) for s in alternatives))


def redact(text: str) -> str:
    """`text` with every registered secret and token-shaped string replaced."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _TOKEN_SHAPES.sub(REDACTED, text)


def _format_value(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


class KeyValueFormatter(logging.Formatter):
    """``time level logger event k=v …``, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts = [when[:-4] + "Z", record.levelname.lower(), record.name, record.getMessage()]
        parts.extend(f"{k}={_format_value(v)}" for k, v in fields.items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log `event` with structured `fields` (rendered as key=value, redacted)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Route fleetlog's logs to stderr as redacted key=value lines."""
    register_secret(*secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger("fleetlog")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
