"""Publishing live state: TeslaMate's MQTT topics and Home Assistant discovery.

The public surface, for the runtime::

    from fleetlog.publish import CarInfo, MqttPublisher

    publisher = MqttPublisher(settings)          # disabled by DISABLE_MQTT or no MQTT_HOST
    await publisher.start()                      # returns at once; connects in the background
    publisher.set_cars([CarInfo(car_id, vin, name), ...])  # others' discovery configs cleared
    publisher.submit(car_id, summary)            # on every PublishSummary; never blocks
    publisher.submit_budget(car_id, governor.state(now), vehicle=str(vehicle_id))
    await publisher.stop()

Modules: ``topics`` (names), ``payloads`` (summary → topic payloads),
``discovery`` (Home Assistant device configs), ``publisher`` (the connection).
"""

from fleetlog.publish.discovery import ENTITIES, Device, Entity, device_config
from fleetlog.publish.payloads import (
    CLEARED_WHEN_NIL,
    FLEETLOG_KEYS,
    NOT_RETAINED,
    TESLAMATE_KEYS,
    budget_payloads,
    car_payloads,
)
from fleetlog.publish.publisher import CarInfo, MqttPublisher
from fleetlog.publish.topics import Topics

__all__ = [
    "CLEARED_WHEN_NIL",
    "ENTITIES",
    "FLEETLOG_KEYS",
    "NOT_RETAINED",
    "TESLAMATE_KEYS",
    "CarInfo",
    "Device",
    "Entity",
    "MqttPublisher",
    "Topics",
    "budget_payloads",
    "car_payloads",
    "device_config",
]
