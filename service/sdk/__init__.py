"""The jobtrail SDK: the HTTP client (`client.Client`, `client.AsyncClient`) and the worker
SDK (`worker.Worker`). It imports nothing from the server: it runs on clients' and workers'
machines with httpx and httpx-sse only."""
