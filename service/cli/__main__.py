"""`python -m service.cli`: the `jobtrail` command."""

from __future__ import annotations

from service.cli import main

main()
