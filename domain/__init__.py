"""The Job aggregate, its events and rules. Pure: no I/O."""
