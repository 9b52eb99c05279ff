"""Log lines are key=value and never carry a secret."""

from __future__ import annotations

import io
import logging

from fleetlog.logs import KeyValueFormatter, log_event, redact, register_secret


def _capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(KeyValueFormatter())
    logger = logging.getLogger("fleetlog.test.logs")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


def test_key_value_rendering_quotes_spaces() -> None:
    logger, stream = _capture()
    log_event(logger, logging.INFO, "drive_closed", car=1, place="Main Street", km=12.5)
    line = stream.getvalue().strip()
    assert line.split(" ")[1:4] == ["info", "fleetlog.test.logs", "drive_closed"]
    assert line.endswith('car=1 place="Main Street" km=12.5')


def test_registered_secrets_and_token_shapes_are_redacted() -> None:
    register_secret("provider-token-123456")
    logger, stream = _capture()
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2F1dGgifQ.c2lnbmF0dXJl"
    log_event(
        logger,
        logging.DEBUG,
        "request",
        url="https://api.example/api/1/products?token=provider-token-123456&x=1",
        auth=f"Bearer {jwt}",
        refresh="eu-0123456789abcdef0123456789",
    )
    out = stream.getvalue()
    assert "provider-token-123456" not in out
    assert jwt not in out
    assert "eu-0123456789abcdef0123456789" not in out
    assert "x=1" in out  # the rest of the line is kept


def test_exception_text_is_redacted_too() -> None:
    register_secret("s3cret-refresh-value")
    logger, stream = _capture()
    try:
        raise RuntimeError("refresh failed for s3cret-refresh-value")
    except RuntimeError:
        logger.exception("refresh_failed")
    assert "s3cret-refresh-value" not in stream.getvalue()
    assert "RuntimeError" in stream.getvalue()


def test_redact_keeps_ordinary_text() -> None:
    assert redact("car=1 state=online odometer=1234.5") == "car=1 state=online odometer=1234.5"
