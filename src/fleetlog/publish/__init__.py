"""fleetlog.publish."""
