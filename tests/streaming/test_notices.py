"""``fleetlog_telemetry_notices`` on SQLite and PostgreSQL: alerts and errors are stored and
read back, an alert's end is written into its row when it arrives, and a notice seen again
(MQTT's ``history`` replays every alert, brokers redeliver) is stored once. Directly, and
end to end from Mosquitto through the MQTT feed and the hub's notice writer."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import aiomqtt
import sqlalchemy as sa

from fleetlog.clock import LoopClock
from fleetlog.sources.streaming import Notice, NoticeTable, StreamHub, TelemetryTarget
from fleetlog.sources.streaming.telemetry import MqttFeed
from fleetlog.store.tables import telemetry_notices as t

T0 = datetime(2025, 3, 5, 18, 30, 12, 483_000, tzinfo=UTC)
VIN = "5YJ3E7EB0NF000001"


def rows(engine: sa.Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(t).order_by(t.c.kind, t.c.name, t.c.at)))


def naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def test_alerts_and_errors_written_ended_and_not_duplicated(migrated_engine: sa.Engine) -> None:
    table = NoticeTable(migrated_engine, clock=LoopClock(epoch=T0))
    sentry = Notice(VIN, "alert", "VCSEC_a209_sentryModeArmed", T0, audiences=("Customer",))
    error = Notice(
        VIN, "error", "unknown_field", T0 + timedelta(seconds=1),
        tags={"field_name": "Bogus", "name": "unknown_field"}, body="field not supported",
    )  # fmt: skip
    table.write([("telemetry:mqtt://127.0.0.1:1883/x", sentry), ("telemetry:…", error)])
    table.write([("telemetry:…", sentry), ("telemetry:…", error)])  # redelivered
    stored = rows(migrated_engine)
    assert [(r.kind, r.name) for r in stored] == [
        ("alert", "VCSEC_a209_sentryModeArmed"), ("error", "unknown_field")
    ]  # fmt: skip
    alert, err = stored
    assert alert.vin == VIN and alert.at == naive(T0) and alert.ended_at is None
    assert alert.audiences == "Customer" and alert.source == "telemetry:mqtt://127.0.0.1:1883/x"
    assert json.loads(err.tags) == {"field_name": "Bogus", "name": "unknown_field"}
    assert err.body == "field not supported" and err.at == naive(T0 + timedelta(seconds=1))

    ended = Notice(VIN, "alert", sentry.name, T0, ended_at=T0 + timedelta(minutes=42),
                   audiences=("Customer",))  # fmt: skip
    # The end arrives with the history replay of the start in the same batch, then again.
    table.write([("telemetry:…", sentry), ("telemetry:…", ended)])
    table.write([("telemetry:…", ended), ("telemetry:…", sentry)])
    stored = rows(migrated_engine)
    assert len(stored) == 2
    assert stored[0].ended_at == naive(T0 + timedelta(minutes=42))

    # The same alert started again later is a new row.
    again = Notice(VIN, "alert", sentry.name, T0 + timedelta(hours=2), audiences=("Customer",))
    table.write([("telemetry:…", again)])
    assert [r.ended_at is None for r in rows(migrated_engine) if r.kind == "alert"] == [
        False, True
    ]  # fmt: skip


async def test_mqtt_alerts_and_errors_reach_the_table(migrated_engine: sa.Engine) -> None:
    base = f"nt{uuid.uuid4().hex[:8]}"
    hub = StreamHub(notices=NoticeTable(migrated_engine))
    feed = MqttFeed(TelemetryTarget.parse(f"mqtt://127.0.0.1:1883/{base}"), hub, hold_s=0.05)
    hub.add(feed)
    started = {"StartedAt": T0.isoformat(), "Audiences": ["Customer"]}
    ended = {**started, "EndedAt": (T0 + timedelta(minutes=5)).isoformat()}
    error = {"Body": "field not supported", "Tags": {"field_name": "Bogus"},
             "CreatedAt": T0.isoformat()}  # fmt: skip
    alert_topic = f"{base}/{VIN}/alerts/VCSEC_a209_sentryModeArmed"
    messages = [
        (f"{alert_topic}/current", started),
        (f"{alert_topic}/history", [started]),
        (f"{base}/{VIN}/errors/unknown_field", error),
        (f"{base}/{VIN}/errors/unknown_field", error),  # redelivered
        (f"{alert_topic}/current", ended),
        (f"{alert_topic}/history", [ended, started]),
    ]
    async with hub:
        await asyncio.wait_for(feed.connected.wait(), 5)
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            for topic, payload in messages:
                await client.publish(topic, json.dumps(payload), qos=1)
        for _ in range(50):
            await asyncio.sleep(0.05)
            stored = await asyncio.to_thread(rows, migrated_engine)
            if any(r.ended_at is not None for r in stored) and len(stored) == 2:
                break
    stored = rows(migrated_engine)
    assert [(r.kind, r.name) for r in stored] == [
        ("alert", "VCSEC_a209_sentryModeArmed"), ("error", "unknown_field")
    ]  # fmt: skip
    assert stored[0].at == naive(T0)
    assert stored[0].ended_at == naive(T0 + timedelta(minutes=5))
    assert stored[1].body == "field not supported"
    assert stored[0].source == f"telemetry:mqtt://127.0.0.1:1883/{base}"
