"""A started server keeps what it made while starting out of Python's full garbage collections (gc.freeze): under
load each full collection walked some half a million objects that live as long as the process, 0.3–0.6 s in
which the server answered nothing."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from kehu.app import create_app


def test_a_started_server_freezes_what_it_made_while_starting(settings, clean_database):
    gc.unfreeze()
    try:
        app = create_app(settings.model_copy(update={"freeze_startup_objects": True}), clean_database,
                         with_ui=False, embedded_worker=False)
        assert gc.get_freeze_count() == 0
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the modules, the models' mappers, the routes …
    finally:
        gc.unfreeze()  # (this process goes on making and dropping apps)


def test_the_tests_own_apps_are_not_frozen(app):
    gc.unfreeze()
    with TestClient(app):
        assert gc.get_freeze_count() == 0
