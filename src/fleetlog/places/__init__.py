"""fleetlog.places: geofences, geocoding and the addresses cache.

Public API::

    finder = PlaceFinder(OfflineGeocoder())        # the logbook's hook, inside its transaction
    place = finder.place(conn, car_id, lat, lon)   # Place(address_id, geofence_id)

    fence, relabelled = create_geofence(conn, GeofenceSpec("Home", 52.5, 13.4, radius=40))
    update_geofence(conn, fence.id, replace(spec_of(fence), radius=60))
    delete_geofence(conn, fence.id)                # each relabels past drives and charges

    async with NominatimGeocoder(url, proxy=...) as nominatim:
        await repair_addresses(engine, nominatim)  # fill gaps; AddressRepair runs it hourly

Modules: :mod:`~fleetlog.places.geometry` (distances), :mod:`~fleetlog.places.geofences`,
:mod:`~fleetlog.places.addresses` (the cache), :mod:`~fleetlog.places.geocoder` (the
protocol), :mod:`~fleetlog.places.offline`, :mod:`~fleetlog.places.nominatim`,
:mod:`~fleetlog.places.lookup` (the logging path), :mod:`~fleetlog.places.repair`.
"""

from fleetlog.places.addresses import Address, load_address, save_address
from fleetlog.places.geocoder import Geocoder, GeocoderError
from fleetlog.places.geofences import (
    Geofence,
    GeofenceError,
    GeofenceSpec,
    Relabelled,
    create_geofence,
    delete_geofence,
    find_geofence,
    geofence_at,
    get_geofence,
    list_geofences,
    nearest_containing,
    relabel,
    spec_of,
    update_geofence,
)
from fleetlog.places.geometry import distance_m
from fleetlog.places.lookup import Place, PlaceFinder
from fleetlog.places.nominatim import NominatimGeocoder
from fleetlog.places.offline import OfflineGeocoder
from fleetlog.places.repair import (
    AddressRepair,
    RepairReport,
    current_language,
    refresh_language,
    repair_addresses,
)

__all__ = [
    "Address",
    "AddressRepair",
    "Geocoder",
    "GeocoderError",
    "Geofence",
    "GeofenceError",
    "GeofenceSpec",
    "NominatimGeocoder",
    "OfflineGeocoder",
    "Place",
    "PlaceFinder",
    "Relabelled",
    "RepairReport",
    "create_geofence",
    "current_language",
    "delete_geofence",
    "distance_m",
    "find_geofence",
    "geofence_at",
    "get_geofence",
    "list_geofences",
    "load_address",
    "nearest_containing",
    "refresh_language",
    "relabel",
    "repair_addresses",
    "save_address",
    "spec_of",
    "update_geofence",
]
