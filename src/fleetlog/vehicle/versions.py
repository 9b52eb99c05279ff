"""Comparing Tesla software versions ("2024.8.7 c5c3f0a2e1" and the like)."""

from __future__ import annotations


def version_key(version: str) -> tuple[int, ...]:
    """A sortable key: the build hash after the space is ignored, each dotted part numeric.

    Non-numeric parts count as 0 so an odd string never raises inside the machine.
    """
    head = version.strip().split(" ", 1)[0]
    key: list[int] = []
    for part in head.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        key.append(int(digits) if digits else 0)
    return tuple(key)


def is_newer(candidate: str, than: str | None) -> bool:
    """True when `candidate` is a later version than `than` (anything beats ``None``)."""
    if than is None:
        return True
    a, b = version_key(candidate), version_key(than)
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)) > b + (0,) * (width - len(b))
