"""The journeys' pages: the list and one journey (its controls, its problems and its path with live counts)."""

from __future__ import annotations


def register() -> None:
    from kehu.journeys.ui import journeys

    journeys.register()
