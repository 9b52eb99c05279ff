"""fleetlog.vehicle."""
