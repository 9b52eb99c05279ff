"""fleetlog — a self-hosted data logger for Tesla vehicles.

A drop-in successor to TeslaMate for the Fleet API era: the same environment
variables, PostgreSQL tables and MQTT topics, plus native Fleet Telemetry, a
request budget and SQLite as the embedded default.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
