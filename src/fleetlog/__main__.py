"""`python -m fleetlog` runs the command-line interface."""

from fleetlog.cli import main

main()
