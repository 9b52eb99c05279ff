"""Fleet Telemetry on the wire: what the fleet-telemetry server hands its dispatchers.

- :func:`server_transform`: the server's own rewrites of ``V`` records (reference §3.4): a
  ``Location`` that arrives as a ``"(lat N, lon W)"`` string becomes ``location_value``,
  and strings in scientific notation become ``%.5f``.
- :func:`encode`: ``protobuf`` (the official schema from ``tesla-protocol``: ``Payload``,
  ``VehicleConnectivity``, ``VehicleAlerts``, ``VehicleErrors``) or ``json``, the protojson
  that ``transmit_decoded_records: true`` produces (lowerCamelCase keys, enum names, int64 as
  strings, unpopulated fields emitted).
- :func:`plain_value`: a Value as a bare JSON value, as the MQTT dispatcher publishes it
  and Teslemetry's stream decodes it (locations ``{"latitude","longitude"}``, enum names,
  ``null`` for ``invalid``).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import Message
from tesla_protocol.telemetry import (
    vehicle_alert_pb2,
    vehicle_connectivity_pb2,
    vehicle_data_pb2,
    vehicle_error_pb2,
)

from fleetlog.sim.telemetry import (
    AlertsRecord,
    ConnectivityRecord,
    Datum,
    Record,
    Value,
    VRecord,
)

Encoding = Literal["protobuf", "json"]
ENCODINGS: tuple[Encoding, ...] = ("protobuf", "json")

_LOCATION = re.compile(r"^\(\s*([0-9.]+)\s*([NS]),\s*([0-9.]+)\s*([EW])\s*\)$")
_SCIENTIFIC = re.compile(r"^-?\d+(\.\d+)?[eE][-+]?\d+$")


def server_transform(record: VRecord) -> VRecord:
    """The rewrites the fleet-telemetry server applies before dispatching a ``V`` record."""
    data: list[Datum] = []
    for d in record.data:
        v = d.value
        if v.kind == "string_value" and isinstance(v.value, str):
            m = _LOCATION.match(v.value) if d.field == "Location" else None
            if m is not None:
                lat = float(m.group(1)) * (-1 if m.group(2) == "S" else 1)
                lng = float(m.group(3)) * (-1 if m.group(4) == "W" else 1)
                v = Value("location_value", (lat, lng))
            elif _SCIENTIFIC.match(v.value):
                v = Value("string_value", f"{float(v.value):.5f}")
        data.append(Datum(d.field, v) if v is not d.value else d)
    return replace(record, data=tuple(data))


def _set_value(target: vehicle_data_pb2.Value, value: Value) -> None:
    kind = value.kind
    if kind == "location_value":
        lat, lng = value.value
        target.location_value.latitude = lat
        target.location_value.longitude = lng
    elif kind == "door_value":
        for name, is_open in value.value:
            setattr(target.door_value, name, bool(is_open))
    elif kind == "invalid":
        target.invalid = True
    else:
        fd = vehicle_data_pb2.Value.DESCRIPTOR.fields_by_name[kind]
        if fd.enum_type is not None:
            setattr(target, kind, fd.enum_type.values_by_name[value.value].number)
        else:
            setattr(target, kind, value.value)


def to_proto(record: Record) -> Message:
    """The record as a message of the official schema."""
    if isinstance(record, VRecord):
        payload = vehicle_data_pb2.Payload(
            vin=record.vin, is_resend=record.is_resend, created_at=record.created_at
        )
        for d in record.data:
            datum = vehicle_data_pb2.Datum(key=d.field)
            _set_value(datum.value, d.value)
            payload.data.append(datum)
        return payload
    if isinstance(record, ConnectivityRecord):
        return vehicle_connectivity_pb2.VehicleConnectivity(
            vin=record.vin,
            connection_id=record.connection_id,
            status=record.status,
            created_at=record.created_at,
            network_interface=record.network_interface,
        )
    if isinstance(record, AlertsRecord):
        return vehicle_alert_pb2.VehicleAlerts(
            vin=record.vin,
            created_at=record.created_at,
            alerts=[
                vehicle_alert_pb2.VehicleAlert(
                    name=a.name,
                    audiences=list(a.audiences),
                    started_at=a.started_at,
                    ended_at=a.ended_at,
                )
                for a in record.alerts
            ],
        )
    return vehicle_error_pb2.VehicleErrors(
        vin=record.vin,
        created_at=record.created_at,
        errors=[
            vehicle_error_pb2.VehicleError(
                name=e.name, body=e.body, created_at=e.created_at, tags=dict(e.tags)
            )
            for e in record.errors
        ],
    )


def to_protojson(record: Record) -> dict[str, Any]:
    """The record as Go's protojson with ``EmitUnpopulated`` renders it."""
    body: dict[str, Any] = json_format.MessageToDict(
        to_proto(record), always_print_fields_with_no_presence=True
    )
    if isinstance(record, AlertsRecord):
        # Go emits an unset message field as null; Python leaves it out.
        for item in body.get("alerts", []):
            item.setdefault("endedAt", None)
    return body


def encode(record: Record, encoding: Encoding) -> bytes:
    """The payload bytes a dispatcher publishes for `record`."""
    if encoding == "json":
        return json.dumps(to_protojson(record), separators=(",", ":")).encode()
    data: bytes = to_proto(record).SerializeToString()
    return data


def plain_value(value: Value) -> Any:
    """A Value as one bare JSON value (MQTT dispatcher, Teslemetry's decoded stream)."""
    kind = value.kind
    if kind == "invalid":
        return None
    if kind == "location_value":
        lat, lng = value.value
        return {"latitude": lat, "longitude": lng}
    if kind == "door_value":
        return {name: bool(is_open) for name, is_open in value.value}
    return value.value


def rfc3339(t: datetime) -> str:
    """Go's RFC 3339 rendering of a UTC time, with nanoseconds when there are any."""
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"
