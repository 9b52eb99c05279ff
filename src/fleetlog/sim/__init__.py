"""fleetlog.sim."""
