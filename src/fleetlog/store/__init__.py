"""fleetlog.store."""
