"""What the REST client returns: vehicles and the region, parsed at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Vehicle:
    """One item of the vehicle/product list, or the free single-vehicle call."""

    id: int  # the product id (TeslaMate's cars.eid)
    vehicle_id: int | None  # the legacy streaming tag (cars.vid)
    vin: str
    display_name: str | None
    state: str  # online | asleep | offline | unknown (TeslaMate's default) | …
    in_service: bool
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Any) -> Vehicle:
        """Parse one vehicle object; ValueError says which field is wrong."""
        if not isinstance(obj, dict):
            raise ValueError(f"a vehicle is a JSON object, got {type(obj).__name__}")
        raw_id = obj.get("id", obj.get("id_s"))
        try:
            vid = int(str(raw_id))  # id_s is the same number as a string
        except ValueError:
            raise ValueError(f"vehicle without a numeric id ({raw_id!r})") from None
        vin = obj.get("vin")
        if not isinstance(vin, str) or not vin:
            raise ValueError(f"vehicle {vid} without a VIN")
        vehicle_id = obj.get("vehicle_id")
        state = obj.get("state")
        name = obj.get("display_name")
        return cls(
            id=vid,
            vehicle_id=int(vehicle_id)
            if isinstance(vehicle_id, int | str) and str(vehicle_id).isdigit()
            else None,
            vin=vin,
            display_name=name if isinstance(name, str) else None,
            state=state if isinstance(state, str) and state else "unknown",
            in_service=bool(obj.get("in_service", False)),
            raw=obj,
        )


@dataclass(frozen=True, slots=True)
class Region:
    """The account's region and its Fleet API base URL (``/api/1/users/region``)."""

    region: str
    base_url: str
