"""The token verifier the auth tests check, built from settings, and its shared secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.edge import auth
from service.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "s" * 32


def make_verifier(tmp_path: Path, **settings: Any) -> auth.TokenVerifier:
    return auth.TokenVerifier.from_settings(Settings(data_dir=tmp_path, **settings))
