"""A real `kehu serve` for the UI's tests that look at what a browser receives."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import _free_port, serving


@pytest.fixture
def just_started(tmp_path: Path) -> Iterator[str]:
    """A server on an empty database, nobody having visited it yet (NiceGUI is mounted once per process: a
    process of its own)."""
    port = _free_port()
    env = {**os.environ, "KEHU_DATA_DIR": str(tmp_path), "KEHU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
           "KEHU_EMBEDDED_WORKER": "false"}
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "kehu", "serve", "--port", str(port)], env=env,
                                   cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            assert serving(base), (tmp_path / "server.log").read_text()[-3000:]
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "server.log").read_text()
