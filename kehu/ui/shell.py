"""The NiceGUI shell (placeholder until the UI lands)."""

from fastapi import FastAPI

from kehu.core.settings import Settings


def mount_ui(app: FastAPI, settings: Settings) -> None:
    return None
