"""Read models built from the event log, and the SQL that serves them."""
