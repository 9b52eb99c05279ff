"""Topic names: TeslaMate's, byte for byte, and only our own discovery nodes."""

from __future__ import annotations

from fleetlog.config import load_settings
from fleetlog.publish import MqttPublisher, Topics


def test_car_topics() -> None:
    assert Topics().car(1, "battery_level") == "teslamate/cars/1/battery_level"
    assert Topics("home").car(2, "state") == "teslamate/home/cars/2/state"


def test_discovery_topics() -> None:
    assert Topics().device_config(1) == "homeassistant/device/teslamate_1/config"
    assert Topics("home", "ha").device_config(3) == "ha/device/teslamate_home_3/config"
    assert Topics().legacy_config("sensor", 1, "tesla_odometer") == (
        "homeassistant/sensor/teslamate_1/tesla_odometer/config"
    )


def test_only_our_nodes_are_recognised() -> None:
    plain, named = Topics(), Topics("home")
    assert plain.car_of_node("teslamate_12") == 12
    assert plain.car_of_node("teslamate_home_12") is None  # another installation
    assert plain.car_of_node("teslamate_") is None
    assert named.car_of_node("teslamate_home_12") == 12
    assert named.car_of_node("teslamate_12") is None
    assert named.car_of_node("teslamate_homex_12") is None
    assert plain.discovery_car("homeassistant/device/teslamate_4/config") == (4, False)
    assert plain.discovery_car("homeassistant/sensor/teslamate_4/tesla_speed/config") == (4, True)
    assert plain.discovery_car("homeassistant/device/zigbee_4/config") is None
    assert plain.discovery_car("other/device/teslamate_4/config") is None
    assert Topics(None, "a/b").discovery_car("a/b/device/teslamate_4/config") == (4, False)


def test_settings_are_teslamates() -> None:
    publisher = MqttPublisher(
        load_settings(
            {
                "MQTT_HOST": "broker",
                "MQTT_NAMESPACE": "garage",
                "MQTT_HOME_ASSISTANT_DISCOVERY": "true",
                "MQTT_HOME_ASSISTANT_DISCOVERY_PREFIX": "hass",
            }
        )
    )
    assert publisher.enabled and publisher.discovery
    assert publisher.topics == Topics("garage", "hass")
    assert not MqttPublisher(load_settings({})).enabled  # no MQTT_HOST: off
    off = MqttPublisher(load_settings({"MQTT_HOST": "broker", "DISABLE_MQTT": "true"}))
    assert not off.enabled and not off.discovery
    off.submit(1, {"state": "online"})  # accepted, does nothing
