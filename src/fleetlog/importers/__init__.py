"""fleetlog.importers."""
