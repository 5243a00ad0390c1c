"""`kehu worker` as a real process: it claims queued work, gives way to the servers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from kehu.core.jobs import Job
from kehu.tenancy import schemas, service


def test_worker_process_runs_a_job_and_exits_on_sigterm(session, tree, database_url, tmp_path):
    admin = tree.principal(session, tree.admin)
    job = service.request_reassign(session, admin, data=schemas.ReassignRequest(
        from_user_id=tree.a_sales.id, to_user_id=tree.a_sales2.id, deactivate_from_user=True))
    session.commit()
    env = {**os.environ, "KEHU_DATABASE_URL": database_url, "KEHU_DATA_DIR": str(tmp_path),
           "KEHU_JOB_POLL_SECONDS": "0.1"}
    process = subprocess.Popen([sys.executable, "-m", "kehu", "worker"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        status = "queued"
        while time.monotonic() < deadline and status != "succeeded":
            time.sleep(0.2)
            session.expire_all()
            status = session.get(Job, job.id).status
        assert status == "succeeded"
        # a worker process yields the CPU to the servers beside it (settings.worker_nice, 10 by default)
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode()
    assert "worker stopped" in output
    session.expire_all()
    assert service.get_user(session, admin, tree.a_sales.id).is_active is False
