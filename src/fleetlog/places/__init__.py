"""fleetlog.places."""
