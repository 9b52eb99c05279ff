"""Home Assistant discovery: payloads checked against HA's rules, on paper and on Mosquitto."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
from _day import summaries
from _ha_rules import numeric, problems
from _mqtt import HOST, Recorder, Space, retained

from fleetlog.publish import (
    ENTITIES,
    FLEETLOG_KEYS,
    TESLAMATE_KEYS,
    CarInfo,
    Device,
    MqttPublisher,
    Topics,
    device_config,
)

VIN = "5YJ3E7EB0KF000001"


def test_device_config_follows_home_assistants_rules() -> None:
    config = device_config(
        Topics("garage"),
        Device(1, VIN, "Blue Bird", "model3", "74d", "2026.2.1"),
        configuration_url="https://fleetlog.example/",
    )
    assert problems(config) == []
    assert config["device"] == {
        "identifiers": ["teslamate_garage_1"],
        "name": "Blue Bird",
        "manufacturer": "Tesla",
        "model": "Model 3 74D",
        "sw_version": "2026.2.1",
        "serial_number": VIN,
        "configuration_url": "https://fleetlog.example/",
    }
    assert config["availability_topic"] == "teslamate/garage/cars/1/healthy"
    platforms = {c["platform"] for c in config["components"].values()}
    assert platforms == {"sensor", "binary_sensor", "device_tracker", "update"}
    # every entity reads a topic fleetlog publishes
    topics = {
        c.get("state_topic") or c.get("json_attributes_topic")
        for c in config["components"].values()
    }
    keys = {t.removeprefix("teslamate/garage/cars/1/") for t in topics}
    assert keys <= set(TESLAMATE_KEYS) | set(FLEETLOG_KEYS)
    # and every non-deprecated key has an entity reading it
    deprecated = {
        "latitude",
        "longitude",
        "active_route_destination",
        "active_route_latitude",
        "active_route_longitude",
        "update_version",
    }
    assert set(TESLAMATE_KEYS) - deprecated <= keys
    assert set(FLEETLOG_KEYS) <= keys


def test_unique_ids_are_stable_and_distinct_per_car_and_namespace() -> None:
    def ids(topics: Topics, device: Device) -> set[str]:
        return {c["unique_id"] for c in device_config(topics, device)["components"].values()}

    one = ids(Topics(), Device(1))
    assert one == ids(Topics(), Device(1, VIN, "renamed", "modely", None, "2027.1"))
    assert "teslamate_1_battery_level" in one
    assert len(one) == len(ENTITIES)
    assert one.isdisjoint(ids(Topics(), Device(2)))
    assert one.isdisjoint(ids(Topics("garage"), Device(1)))


async def _plant(port: int, messages: dict[str, str]) -> None:
    async with aiomqtt.Client(HOST, port) as client:
        for topic, payload in messages.items():
            await client.publish(topic, payload, qos=1, retain=True)


async def test_discovery_on_mosquitto(space: Space) -> None:
    """After a day: one retained config per car that HA accepts, its topics published."""
    settings = space.settings(MQTT_HOME_ASSISTANT_DISCOVERY="true")
    publisher = MqttPublisher(settings)
    base = f"{space.base}/cars/1"
    async with Recorder(space.port, [f"{space.base}/#", f"{space.prefix}/#"]) as rec:
        await publisher.start()
        try:
            publisher.set_cars([CarInfo(1, VIN, "Blue Bird")])
            for _, summary in summaries():
                publisher.submit(1, summary)
            assert await publisher.wait_idle(10)
            await rec.wait_for(lambda: any(m.payload == "true" for m in rec.on(f"{base}/healthy")))
        finally:
            await publisher.stop()
    kept = await retained(space.port, f"{space.prefix}/#")
    assert list(kept) == [f"{space.prefix}/device/teslamate_{space.namespace}_1/config"]
    config = json.loads(next(iter(kept.values())))
    assert problems(config) == []
    assert config["device"]["name"] == "Blue Bird"
    assert config["device"]["sw_version"] == "2026.2.1"
    latest = {m.topic: m.payload for m in rec.messages if m.topic.startswith(base)}
    assert config["availability_topic"] in latest
    assert latest[config["availability_topic"]] == config["payload_available"]
    read = 0
    for object_id, c in config["components"].items():
        topic = c.get("state_topic") or c["json_attributes_topic"]
        assert topic.startswith(f"{base}/"), object_id
        if topic not in latest or latest[topic] == "":
            continue  # no data for it in this day (HA shows "unknown")
        read += 1
        value = latest[topic]
        if c["platform"] == "binary_sensor":
            assert value in (c["payload_on"], c["payload_off"]), object_id
        elif c["platform"] == "sensor" and numeric(c) and "value_template" not in c:
            float(value)  # HA would reject a non-number for a sensor with a unit
        elif c["platform"] in ("update", "device_tracker"):
            assert isinstance(json.loads(value), dict)
    assert read >= 50


async def test_stale_configs_cleared_and_legacy_ones_migrated(space: Space) -> None:
    ns, prefix = space.namespace, space.prefix
    stale = f"{prefix}/device/teslamate_{ns}_99/config"
    legacy = f"{prefix}/sensor/teslamate_{ns}_1/tesla_odometer/config"
    stranger = f"{prefix}/device/teslamate_{ns}x_99/config"  # another installation
    await _plant(space.port, {stale: '{"device":{}}', legacy: '{"name":"x"}', stranger: "{}"})
    publisher = MqttPublisher(
        space.settings(MQTT_HOME_ASSISTANT_DISCOVERY="true"), scan_quiet_s=0.2
    )
    async with Recorder(space.port, [f"{prefix}/#"]) as rec:
        await publisher.start()
        try:
            publisher.set_cars([CarInfo(1, VIN, "Blue Bird")])
            publisher.submit(1, summaries()[-1][1])
            assert await publisher.wait_idle(5)
            await rec.wait_for(lambda: len(rec.on(legacy)) >= 3)
        finally:
            await publisher.stop()
    kept = await retained(space.port, f"{prefix}/#")
    assert set(kept) == {f"{prefix}/device/teslamate_{ns}_1/config", stranger}
    # HA's migration order: mark the old topic, publish the device config, then remove it
    legacy_msgs = [m.payload for m in rec.on(legacy)]
    assert legacy_msgs[-2:] == ['{"migrate_discovery":true}', ""]
    device_at = max(i for i, m in enumerate(rec.messages) if m.topic.endswith("_1/config"))
    removed_at = max(i for i, m in enumerate(rec.messages) if m.topic == legacy)
    assert device_at < removed_at


async def test_removed_car_config_cleared(space: Space) -> None:
    publisher = MqttPublisher(space.settings(MQTT_HOME_ASSISTANT_DISCOVERY="true"))
    await publisher.start()
    try:
        publisher.set_cars([CarInfo(1, VIN), CarInfo(2, "5YJ3E7EB0KF000002")])
        publisher.submit(1, {"state": "asleep", "healthy": True})
        publisher.submit(2, {"state": "asleep", "healthy": True})
        assert await publisher.wait_idle(5)
        both = await retained(space.port, f"{space.prefix}/#")
        assert len(both) == 2
        publisher.remove_car(2)  # disabled in the web app
        publisher.submit(2, {"state": "online"})  # a late summary must not resurrect it
        assert await publisher.wait_idle(5)
        await asyncio.sleep(0.05)
        left = await retained(space.port, f"{space.prefix}/#")
    finally:
        await publisher.stop()
    assert list(left) == [f"{space.prefix}/device/teslamate_{space.namespace}_1/config"]
