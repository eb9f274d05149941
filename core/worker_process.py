"""A Celery worker as a child process, started and stopped the same way by the tests and the benches."""

import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

WORKER_OPTIONS = ["--loglevel", "INFO", "--pool", "prefork", "--without-heartbeat", "--without-mingle", "--without-gossip"]


def worker_spawn(*, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path, timeout: float = 60,
                 new_session: bool = False) -> subprocess.Popen:
    """Start ``argv`` (a ``celery … worker`` command) logging to ``log_path``; return once its log says "ready.".

    With ``new_session`` the worker and its pool processes form their own process group, so a caller can
    SIGKILL all of them at once, as a crashing machine would."""
    log = open(log_path, "w")
    proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=new_session)
    proc.log_path = log_path  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "ready." in log_path.read_text():
            return proc
        if proc.poll() is not None:
            raise RuntimeError("worker exited:\n" + log_path.read_text())
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"worker did not become ready in {timeout:.0f} s:\n" + log_path.read_text())


def worker_stop(proc: subprocess.Popen, *, timeout: float = 20) -> None:
    """A warm shutdown, then a kill if it takes longer than ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
