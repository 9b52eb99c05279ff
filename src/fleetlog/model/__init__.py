"""fleetlog.model."""
