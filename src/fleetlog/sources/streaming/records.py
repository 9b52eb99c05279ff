"""Fleet Telemetry records off the wire: protobuf, protojson and the MQTT layout (§3.4, §3.5).

Rules of this file: pure functions from bytes (or parsed JSON) to neutral records; no
I/O, no per-VIN state. Anything that cannot be read raises :class:`FrameError` with a
short excerpt; a datum that cannot be read is left out and reported in ``problems``,
so one bad field never costs the rest of its record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from google.protobuf.message import DecodeError, Message
from tesla_protocol.telemetry import (
    vehicle_alert_pb2,
    vehicle_connectivity_pb2,
    vehicle_data_pb2,
    vehicle_error_pb2,
)

from fleetlog.model import units
from fleetlog.sources.streaming.fields import INVALID, Plain, location


class FrameError(ValueError):
    """A frame or record that cannot be read; the message carries a short excerpt."""


def excerpt(payload: bytes | str, limit: int = 80) -> str:
    """The start of a payload, printable, for a log line."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    text = text.replace("\n", "\\n")
    return text[:limit] + ("…" if len(text) > limit else "")


RecordType = Literal["V", "connectivity", "alerts", "errors"]
RECORD_TYPES: tuple[RecordType, ...] = ("V", "connectivity", "alerts", "errors")


@dataclass(frozen=True, slots=True)
class VRecord:
    """A ``V`` record: some fields of one car at the car's time (None: the sender gave none)."""

    vin: str
    created_at: datetime | None
    data: tuple[tuple[str, Plain], ...]
    is_resend: bool = False
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectivityRecord:
    """The server saw the car's socket register (``CONNECTED``) or go (``DISCONNECTED``)."""

    vin: str
    status: str
    created_at: datetime | None
    connection_id: str = ""
    network_interface: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """One vehicle alert or error, as fleetlog stores it."""

    vin: str
    kind: Literal["alert", "error"]
    name: str
    at: datetime | None  # an alert's start, an error's creation
    ended_at: datetime | None = None
    audiences: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    body: str = ""


Record = VRecord | ConnectivityRecord | Notice


# --- time ---------------------------------------------------------------------------

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: object) -> datetime | None:
    """RFC 3339 (any number of fraction digits), epoch ms, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return units.from_epoch_ms(value)
        except units.UnitError as exc:
            raise FrameError(str(exc)[:80]) from None
    if not isinstance(value, str):
        raise FrameError(f"expected a timestamp, got {type(value).__name__}")
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except ValueError:
        raise FrameError(f"not a timestamp: {value[:40]!r}") from None
    except OverflowError:  # year 1 or 9999 shifted past the calendar by its offset
        raise FrameError(f"timestamp out of range: {value[:40]!r}") from None


def _proto_time(msg: Any) -> datetime | None:
    if msg.seconds == 0 and msg.nanos == 0:
        return None
    try:
        return datetime.fromtimestamp(msg.seconds + msg.nanos / 1e9, UTC)
    except (OverflowError, OSError, ValueError):
        raise FrameError(f"timestamp out of range: {msg.seconds}") from None


# --- values ---------------------------------------------------------------------------

_VALUE = vehicle_data_pb2.Value.DESCRIPTOR
_VALUE_FIELDS = {**{f.name: f for f in _VALUE.fields}, **{f.json_name: f for f in _VALUE.fields}}


def _message_flags(msg: Message) -> dict[str, Any]:
    return {f.name: getattr(msg, f.name) for f in msg.DESCRIPTOR.fields}


def plain_from_proto(value: vehicle_data_pb2.Value) -> Plain:
    """A protobuf ``Value`` as a plain value."""
    kind = value.WhichOneof("value")
    if kind is None:
        raise FrameError("a value with no member set")
    if kind == "invalid":
        return INVALID
    raw = getattr(value, kind)
    if kind == "location_value":
        return (raw.latitude, raw.longitude)
    if kind == "time_value":
        return f"{raw.hour:02d}:{raw.minute:02d}:{raw.second:02d}"
    descriptor = _VALUE.fields_by_name[kind]
    if descriptor.enum_type is not None:
        member = descriptor.enum_type.values_by_number.get(raw)
        if member is None:
            raise FrameError(f"{kind}: unknown enum number {raw}")
        return str(member.name)
    if descriptor.message_type is not None:
        return _message_flags(raw)
    if isinstance(raw, bool | int | float | str):
        return raw
    raise FrameError(f"{kind}: unexpected {type(raw).__name__}")


def plain_from_protojson(value: object) -> Plain:
    """A protojson ``Value`` object (``{"stringValue": "34.797"}``) as a plain value."""
    if not isinstance(value, dict) or len(value) != 1:
        raise FrameError(f"expected a Value object with one member, got {str(value)[:60]!r}")
    ((key, raw),) = value.items()
    descriptor = _VALUE_FIELDS.get(key)
    if descriptor is None:
        raise FrameError(f"unknown Value member {key[:40]!r}")
    if descriptor.name == "invalid":
        return INVALID
    if descriptor.name == "location_value":
        point = _location(raw) if isinstance(raw, dict) else None
        if point is None:
            raise FrameError(f"locationValue: {str(raw)[:60]!r}")
        return point
    if descriptor.name == "time_value":
        if not isinstance(raw, dict):
            raise FrameError(f"timeValue: {str(raw)[:60]!r}")
        try:
            h, m, s = (units.integer(raw.get(k)) or 0 for k in ("hour", "minute", "second"))
        except units.UnitError as exc:
            raise FrameError(f"timeValue: {exc}") from None
        return f"{h:02d}:{m:02d}:{s:02d}"
    if descriptor.enum_type is not None and isinstance(raw, int) and not isinstance(raw, bool):
        member = descriptor.enum_type.values_by_number.get(raw)
        if member is None:
            raise FrameError(f"{key}: unknown enum number {raw}")
        return str(member.name)
    return plain_from_json(raw)


def _location(value: dict[str, Any]) -> tuple[float, float] | None:
    try:
        return location(value)
    except units.UnitError as exc:
        raise FrameError(f"location: {exc}") from None


def plain_from_json(value: object) -> Plain:
    """A bare JSON value (MQTT dispatcher, Teslemetry SSE) as a plain value."""
    if value is None:
        return INVALID
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        if set(value) == {"value"}:  # the October-2024 MQTT dispatcher wrapped every value
            return plain_from_json(value["value"])
        if "latitude" in value and "longitude" in value:
            point = _location(value)
            return INVALID if point is None else point
        return dict(value)
    raise FrameError(f"unexpected JSON value {str(value)[:60]!r}")


def field_name(key: object) -> str:
    """A telemetry ``Field`` name from its name or number."""
    if isinstance(key, int) and not isinstance(key, bool):
        try:
            return str(vehicle_data_pb2.Field.Name(key))
        except ValueError:
            raise FrameError(f"unknown field number {key}") from None
    if isinstance(key, str) and key:
        return key
    raise FrameError(f"bad field key {str(key)[:40]!r}")


# --- V records ----------------------------------------------------------------------


def v_from_protobuf(payload: bytes) -> VRecord:
    """A serialized ``Payload``."""
    msg = vehicle_data_pb2.Payload()
    try:
        msg.ParseFromString(payload)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise FrameError(f"not a telemetry Payload ({exc}): {excerpt(payload)}") from None
    data: list[tuple[str, Plain]] = []
    problems: list[str] = []
    for datum in msg.data:
        try:
            data.append((field_name(int(datum.key)), plain_from_proto(datum.value)))
        except FrameError as exc:
            problems.append(str(exc))
    return VRecord(
        vin=msg.vin,
        created_at=_proto_time(msg.created_at),
        data=tuple(data),
        is_resend=msg.is_resend,
        problems=tuple(problems),
    )


def v_from_protojson(obj: object) -> VRecord:
    """A protojson ``Payload`` object (``transmit_decoded_records``)."""
    if not isinstance(obj, dict):
        raise FrameError(f"expected a JSON object, got {type(obj).__name__}")
    items = obj.get("data") or []
    if not isinstance(items, list):
        raise FrameError("data: expected a list")
    data: list[tuple[str, Plain]] = []
    problems: list[str] = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise FrameError(f"datum: expected an object, got {str(item)[:40]!r}")
            data.append((field_name(item.get("key")), plain_from_protojson(item.get("value"))))
        except (FrameError, units.UnitError) as exc:
            problems.append(str(exc))
    return VRecord(
        vin=_vin(obj.get("vin")),
        created_at=parse_time(obj.get("createdAt", obj.get("created_at"))),
        data=tuple(data),
        is_resend=obj.get("isResend", obj.get("is_resend")) is True,
        problems=tuple(problems),
    )


def _vin(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FrameError(f"vin: expected text, got {type(value).__name__}")
    return value


# --- connectivity, alerts, errors ---------------------------------------------------

_CONNECTIVITY = vehicle_connectivity_pb2.ConnectivityEvent


def connectivity_from_protobuf(payload: bytes) -> ConnectivityRecord:
    msg = vehicle_connectivity_pb2.VehicleConnectivity()
    try:
        msg.ParseFromString(payload)
        status = _CONNECTIVITY.Name(msg.status)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise FrameError(f"not a VehicleConnectivity ({exc}): {excerpt(payload)}") from None
    return ConnectivityRecord(
        vin=msg.vin,
        status=status,
        created_at=_proto_time(msg.created_at),
        connection_id=msg.connection_id,
        network_interface=msg.network_interface,
    )


def connectivity_from_json(obj: object) -> ConnectivityRecord:
    """protojson (``status``, ``createdAt``) or the MQTT shape (``Status``, ``CreatedAt``)."""
    if not isinstance(obj, dict):
        raise FrameError(f"expected a JSON object, got {type(obj).__name__}")

    def get(*names: str) -> Any:
        return next((obj[n] for n in names if n in obj), None)

    status = get("status", "Status")
    if isinstance(status, int) and not isinstance(status, bool):
        status = _CONNECTIVITY.Name(status) if status in _CONNECTIVITY.values() else "UNKNOWN"
    if not isinstance(status, str):
        raise FrameError(f"connectivity without a status: {str(obj)[:60]!r}")
    return ConnectivityRecord(
        vin=_vin(get("vin", "Vin")),
        status=status.upper(),
        created_at=parse_time(get("createdAt", "CreatedAt", "created_at")),
        connection_id=str(get("connectionId", "ConnectionId", "connection_id") or ""),
        network_interface=str(get("networkInterface", "NetworkInterface") or ""),
    )


_AUDIENCE = vehicle_alert_pb2.Audience


def alerts_from_protobuf(payload: bytes) -> list[Notice]:
    msg = vehicle_alert_pb2.VehicleAlerts()
    try:
        msg.ParseFromString(payload)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise FrameError(f"not VehicleAlerts ({exc}): {excerpt(payload)}") from None
    return [
        Notice(
            vin=msg.vin,
            kind="alert",
            name=a.name,
            at=_proto_time(a.started_at),
            ended_at=_proto_time(a.ended_at),
            audiences=tuple(
                _AUDIENCE.Name(x) if x in _AUDIENCE.values() else str(x) for x in a.audiences
            ),
        )
        for a in msg.alerts
    ]


def errors_from_protobuf(payload: bytes) -> list[Notice]:
    msg = vehicle_error_pb2.VehicleErrors()
    try:
        msg.ParseFromString(payload)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise FrameError(f"not VehicleErrors ({exc}): {excerpt(payload)}") from None
    return [
        Notice(
            vin=msg.vin,
            kind="error",
            name=e.name,
            at=_proto_time(e.created_at) or _proto_time(msg.created_at),
            tags=dict(e.tags),
            body=e.body,
        )
        for e in msg.errors
    ]


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def notices_from_json(kind: Literal["alert", "error"], obj: object, vin: str = "") -> list[Notice]:
    """protojson ``VehicleAlerts``/``VehicleErrors``, or one MQTT alert/error object.

    An MQTT object has no name and no VIN (they are in the topic): pass `vin` and
    wrap the object as ``{"<kind>s": [{..., "name": …}]}`` before calling.
    """
    if not isinstance(obj, dict):
        raise FrameError(f"expected a JSON object, got {type(obj).__name__}")
    items = obj.get(f"{kind}s")
    if not isinstance(items, list):
        raise FrameError(f"{kind}s: expected a list")
    record_vin = _vin(obj.get("vin")) or vin
    record_time = parse_time(obj.get("createdAt"))
    notices: list[Notice] = []
    for item in items:
        if not isinstance(item, dict):
            raise FrameError(f"{kind}: expected an object, got {str(item)[:40]!r}")

        def get(*names: str, _item: dict[str, Any] = item) -> Any:
            return next((_item[n] for n in names if n in _item), None)

        name = get("name", "Name")
        if not isinstance(name, str) or not name:
            raise FrameError(f"{kind} without a name: {str(item)[:60]!r}")
        audiences = get("audiences", "Audiences") or []
        notices.append(
            Notice(
                vin=record_vin,
                kind=kind,
                name=name,
                at=parse_time(get("startedAt", "StartedAt", "createdAt", "CreatedAt"))
                or record_time,
                ended_at=parse_time(get("endedAt", "EndedAt")),
                audiences=tuple(str(a) for a in audiences) if isinstance(audiences, list) else (),
                tags=_str_map(get("tags", "Tags")),
                body=str(get("body", "Body") or ""),
            )
        )
    return notices


# --- one payload of a known record type ---------------------------------------------


def _looks_like_json(payload: bytes) -> bool:
    return payload.lstrip()[:1] == b"{"


def decode_record(record_type: str, payload: bytes) -> list[Record]:
    """A dispatcher payload (protobuf or protojson, detected) of `record_type`."""
    if record_type not in RECORD_TYPES:
        raise FrameError(f"unknown record type {record_type[:20]!r}")
    if _looks_like_json(payload):
        try:
            obj = json.loads(payload)
        except (ValueError, RecursionError):
            obj = None  # protobuf bytes may start with '{' too
        if obj is not None:
            return _from_json(record_type, obj)
    if record_type == "V":
        return [v_from_protobuf(payload)]
    if record_type == "connectivity":
        return [connectivity_from_protobuf(payload)]
    if record_type == "alerts":
        return list(alerts_from_protobuf(payload))
    return list(errors_from_protobuf(payload))


def _from_json(record_type: str, obj: object) -> list[Record]:
    if record_type == "V":
        return [v_from_protojson(obj)]
    if record_type == "connectivity":
        return [connectivity_from_json(obj)]
    return list(notices_from_json("alert" if record_type == "alerts" else "error", obj))
