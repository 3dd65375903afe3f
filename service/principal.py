"""Who is calling: the subject and scopes of a verified token. The HTTP edge makes one
(service/edge/auth.py); the commands and the live streams act on its behalf."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    sub: str
    scopes: frozenset[str]
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def owner_filter(self) -> str | None:
        """The owner whose jobs the caller sees, or None for every owner (admin)."""
        return None if self.is_admin else self.sub

    def has(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes
