"""fleetlog.web."""
