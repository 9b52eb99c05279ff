"""fleetlog.costs."""
