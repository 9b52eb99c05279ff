"""fleetlog.sources."""
