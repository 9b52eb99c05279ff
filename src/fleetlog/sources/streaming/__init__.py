"""Pushed data: the streaming websocket, Fleet Telemetry (MQTT, ZMQ, Redis), Teslemetry SSE.

The public surface, for the car worker::

    from fleetlog.sources.streaming import CarRef, KeeperCredentials, NoticeTable, StreamHub,
        build_feeds

    hub = StreamHub(notices=NoticeTable(engine))
    credentials = KeeperCredentials(lambda: keeper.access_token,
                                    lambda bad: keeper.refresh(reason="stream", spent_access=bad),
                                    fixed=settings.token)
    for feed in build_feeds(settings, [CarRef(vin, vehicle_id, stream=True)], credentials, hub):
        hub.add(feed)
    async with hub:
        async for item in hub.events(vin):   # FeedEvent(feed, vin | None, event)
            ...                              # Observed | CarConnectivity | StreamConnected | …

Modules: ``fields`` (telemetry fields → canonical state), ``records`` (protobuf, protojson,
MQTT JSON → records), ``sequencer`` (order, resends, per-VIN), ``feed`` (events, backoff,
credentials), ``websocket``, ``telemetry`` (MQTT/ZMQ/Redis), ``sse``, ``hub``, ``profiles``
(the field configuration a logger asks cars for).
"""

from fleetlog.sources.streaming.feed import (
    Backoff,
    Credentials,
    FeedEvent,
    KeeperCredentials,
    Outlet,
    StaticCredentials,
)
from fleetlog.sources.streaming.hub import CarRef, NoticeTable, StreamHub, build_feeds
from fleetlog.sources.streaming.records import FrameError, Notice
from fleetlog.sources.streaming.sse import SseFeed
from fleetlog.sources.streaming.telemetry import TelemetryTarget, telemetry_feed
from fleetlog.sources.streaming.websocket import Dialect, WebsocketFeed

__all__ = [
    "Backoff",
    "CarRef",
    "Credentials",
    "Dialect",
    "FeedEvent",
    "FrameError",
    "KeeperCredentials",
    "Notice",
    "NoticeTable",
    "Outlet",
    "SseFeed",
    "StaticCredentials",
    "StreamHub",
    "TelemetryTarget",
    "WebsocketFeed",
    "build_feeds",
    "telemetry_feed",
]
