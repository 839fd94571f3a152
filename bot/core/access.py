"""Access levels: what a command needs and what an adapter says a person has."""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    """GitHub's repository permission levels, lowest first; every adapter maps its people
    onto them (IRC accounts and API tokens have two tiers: read and write)."""

    NONE = 0
    READ = 1
    TRIAGE = 2
    WRITE = 3
    MAINTAIN = 4
    ADMIN = 5

    @classmethod
    def named(cls, name: str) -> Level:
        """The level called ``name`` (``write``); ``ValueError`` naming the known ones."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"{name!r} is not a level; levels: {', '.join(NAMES)}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


NAMES = tuple(level.label for level in Level)
