"""The imperative shell: HTTP, auth, the event store's writer, CLI."""
