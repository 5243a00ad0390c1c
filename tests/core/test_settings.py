"""Settings come from KEHU_ environment variables and an optional kehu.toml; the environment wins."""

from __future__ import annotations

from kehu.core.settings import Settings


def test_kehu_toml_is_read_and_environment_overrides_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kehu.toml").write_text('default_timezone = "Asia/Hong_Kong"\nport = 9000\n')
    monkeypatch.delenv("KEHU_PORT", raising=False)
    monkeypatch.setenv("KEHU_DEFAULT_TIMEZONE", "Asia/Urumqi")
    settings = Settings()
    assert settings.port == 9000
    assert settings.default_timezone == "Asia/Urumqi"


def test_sqlite_is_the_default_and_postgres_switches_off_the_embedded_worker(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEHU_DATABASE_URL", raising=False)
    local = Settings(data_dir=tmp_path / "d")
    assert local.effective_database_url == f"sqlite:///{(tmp_path / 'd' / 'kehu.db').as_posix()}"
    assert local.run_embedded_worker is True
    cluster = Settings(database_url="postgresql+psycopg://db/kehu")
    assert cluster.run_embedded_worker is False


def test_the_generated_secret_key_is_kept_across_restarts(tmp_path):
    first = Settings(data_dir=tmp_path).effective_secret_key()
    assert len(first) > 40
    assert Settings(data_dir=tmp_path).effective_secret_key() == first
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"


def test_a_servers_thread_pool_and_database_pool_are_sized_together(tmp_path, database_url):
    import anyio.to_thread
    from fastapi.testclient import TestClient

    from kehu.app import create_app
    from kehu.core.db import get_database, set_database

    settings = Settings(data_dir=tmp_path, database_url=database_url, secret_key="s" * 40, threads=7,
                        embedded_worker=False)
    try:
        database = get_database(settings)
        assert database.engine.pool.size() == 9  # the threads, the UI's thread and the embedded worker's
        with TestClient(create_app(settings, database, with_ui=False)) as client:
            # the limiter belongs to the server's event loop: read it there
            limit = client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
            assert limit == 7
    finally:
        set_database(None)
        database.dispose()
