"""jobtrail's benchmarks: `python -m bench [create|list|load] [--quick]` (see bench/README.md)."""
