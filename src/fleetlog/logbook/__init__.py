"""fleetlog.logbook."""
