"""Where things are published: TeslaMate's topic names and Home Assistant's discovery topics.

Topic names are a compatibility contract: dashboards, automations and Home
Assistant entity registries built against TeslaMate keep working only if every
name here is byte for byte what TeslaMate uses (``teslamate/...``, node ids
``teslamate_<id>``), so the prefix stays ``teslamate`` even though fleetlog
publishes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "teslamate"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names for one installation (namespace and discovery prefix)."""

    namespace: str | None = None
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        """``teslamate`` or ``teslamate/<namespace>``."""
        return f"{ROOT}/{self.namespace}" if self.namespace else ROOT

    def car(self, car_id: int, key: str) -> str:
        """``teslamate[/<ns>]/cars/<car_id>/<key>``."""
        return f"{self.base}/cars/{car_id}/{key}"

    def node_id(self, car_id: int) -> str:
        """The Home Assistant node id of a car: ``teslamate[_<ns>]_<car_id>``."""
        return f"{ROOT}_{self.namespace}_{car_id}" if self.namespace else f"{ROOT}_{car_id}"

    def device_config(self, car_id: int) -> str:
        """The device discovery topic: ``<prefix>/device/<node_id>/config``."""
        return f"{self.discovery_prefix}/device/{self.node_id(car_id)}/config"

    def legacy_config(self, component: str, car_id: int, object_id: str) -> str:
        """A per-entity discovery topic (before device discovery): cleared on migration."""
        return f"{self.discovery_prefix}/{component}/{self.node_id(car_id)}/{object_id}/config"

    def car_of_node(self, node_id: str) -> int | None:
        """The car id in one of *our* node ids, or None for any other node.

        Exact match only: without a namespace, ``teslamate_ns_3`` belongs to another
        installation sharing the broker and must never be touched.
        """
        prefix = f"{ROOT}_{self.namespace}_" if self.namespace else f"{ROOT}_"
        if not node_id.startswith(prefix):
            return None
        rest = node_id[len(prefix) :]
        return int(rest) if re.fullmatch(r"[0-9]+", rest) else None

    def discovery_car(self, topic: str) -> tuple[int, bool] | None:
        """(car id, is_legacy) for one of our discovery config topics, else None."""
        parts = topic.split("/")
        prefix = self.discovery_prefix.split("/")
        if parts[: len(prefix)] != prefix or parts[-1] != "config":
            return None
        rest = parts[len(prefix) : -1]
        if len(rest) == 2 and rest[0] == "device":
            car = self.car_of_node(rest[1])
            return None if car is None else (car, False)
        if len(rest) == 3:
            car = self.car_of_node(rest[1])
            return None if car is None else (car, True)
        return None
