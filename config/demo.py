"""`manage.py demo`: what it prints and how it starts web, worker and beat (the Procfile, via honcho).

The banner (URL and logins) is printed before honcho starts, and again by the demo's own fourth process,
``announce`` (`manage.py demo_announce`), once web, worker and beat are up: their start-up logs would
otherwise push it out of sight. The demo's Procfile is the project's Procfile plus that line, written
under VAR_DIR at each start, so production's Procfile keeps its three processes.
"""

import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import honcho.compat
import honcho.manager
from django.conf import settings
from honcho.command import main

# honcho gives processes 5 s after SIGTERM before it SIGKILLs them; even an idle Celery worker's warm
# shutdown takes 4-9 s here (longer while a task runs), so the demo gives them this long to stop cleanly.
STOP_GRACE_SECONDS = 30
# Binding to every interface: browse it on the loopback address, and accept any Host header.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def demo_base_url(host: str, port: int) -> str:
    browse = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return f"http://{f'[{browse}]' if ':' in browse else browse}:{port}"


def demo_banner(*, base_url: str, logins: list[tuple[str, str, str]], serving: bool, up: bool | None = None) -> str:
    """``up`` None: printed before the processes start; True/False: printed by ``announce`` once they are up
    (or when it gave up waiting)."""
    lines = [
        "",
        f"Win-back demo: {base_url}/",
        f"  Admin (managers):  {base_url}/admin/",
        f"  API docs:          {base_url}/api/docs/",
        f"  Health:            {base_url}/health/",
        "",
        "Demo logins (demo only):",
        *(f"  {username:<12} {password:<22} {group}" for username, password, group in logins),
        "",
        f"Emails the demo sends are files in {Path(settings.VAR_DIR).resolve() / 'mail'}/ (EMAIL_URL to change it).",
        _banner_status(serving=serving, up=up),
        "",
    ]
    return "\n".join(lines)


def _banner_status(*, serving: bool, up: bool | None) -> str:
    if not serving:
        return "--no-serve: nothing started; `manage.py demo` without it serves the demo."
    if up is None:
        return "Web, worker and beat start below (this is printed again once they are up); Ctrl-C stops all three."
    if up:
        return "Web, worker and beat are up; press Ctrl-C to stop all three."
    return "Not everything is up yet (see /health/ and the logs above); press Ctrl-C to stop all three."


def demo_web_up(*, base_url: str) -> bool:
    """Web answers (/health/live/: 200 without asking the other loops, so nothing is logged as an error)."""
    try:
        with urllib.request.urlopen(f"{base_url}/health/live/", timeout=5) as response:
            return response.status == 200
    except OSError:  # not listening yet, or a 503 (its database)
        return False


def demo_announce(*, base_url: str, logins: list[tuple[str, str, str]], ready: Callable[[], bool], timeout: float,
                  interval: float = 1.0, out=sys.stdout) -> bool:
    """Wait until ``ready()`` (web, worker and beat up) or ``timeout`` seconds, then print the banner; True
    when they are up."""
    deadline = time.monotonic() + timeout
    up = False
    while time.monotonic() < deadline:
        if ready():
            up = True
            break
        time.sleep(interval)
    out.write(demo_banner(base_url=base_url, logins=logins, serving=True, up=up) + "\n")
    out.flush()
    return up


def demo_process_env(*, host: str, port: int, base_url: str) -> dict[str, str]:
    """The environment honcho passes to web, worker and beat: the same settings as this process."""
    env = dict(os.environ)
    # The Procfile says `python`: make it this interpreter (the venv) without requiring an activated venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["WEB_BIND"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    # Absolute, so all three find the same SQLite file and broker folder whatever the caller's cwd was.
    env["VAR_DIR"] = str(Path(settings.VAR_DIR).resolve())
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach honcho's merged output as they happen
    # Celery's two lines per task would outnumber the emails' own (touchpoints.services.sending logs one each).
    env.setdefault("LOG_LEVELS", "celery.app.trace=WARNING,celery.worker.strategy=WARNING")
    env["DEMO_BASE_URL"] = base_url  # what `manage.py demo_announce` waits for and prints
    env.setdefault("SITE_URL", base_url)  # links in demo emails point at this server
    # The demo's emails go to files under VAR_DIR/mail (one per sending batch), not into the terminal (where the
    # console backend printed every message whole, drowning the URL and the logins).
    env.setdefault("EMAIL_URL", "filemail://")
    host_header = f"[{host}]" if ":" in host else host
    if "ALLOWED_HOSTS" not in env and host_header not in settings.ALLOWED_HOSTS:
        env["ALLOWED_HOSTS"] = "*" if host in WILDCARD_HOSTS else ",".join([*settings.ALLOWED_HOSTS, host_header])
    return env


ANNOUNCE_LINE = "announce: exec python manage.py demo_announce"


def demo_procfile() -> Path:
    """The project's Procfile plus the ``announce`` process, written under VAR_DIR (see the docstring)."""
    procfile = Path(settings.VAR_DIR).resolve() / "demo.Procfile"
    procfile.parent.mkdir(parents=True, exist_ok=True)
    text = (settings.BASE_DIR / "Procfile").read_text().rstrip("\n")
    procfile.write_text(f"{text}\n# The demo only: the URL and logins again once web, worker and beat are up.\n{ANNOUNCE_LINE}\n")
    return procfile


def demo_supervisor_argv(*, colour: bool) -> list[str]:
    """`honcho start` on the demo's Procfile, through this module's __main__ (see STOP_GRACE_SECONDS)."""
    argv = [sys.executable, "-m", "config.demo", "start", "--procfile", str(demo_procfile()),
            "--app-root", str(settings.BASE_DIR)]
    return argv if colour else [*argv, "--no-colour"]


def demo_supervise(argv: list[str]) -> None:
    class TerminateTheProgramOnly(honcho.compat.ProcessManager):
        # honcho sends SIGTERM to each process's whole group, so a Celery worker's pool children die under
        # it mid-shutdown and the worker then hangs until SIGKILL. The Procfile execs each program, so the
        # pid is gunicorn's or Celery's main process: stopping it stops its own children in order (as
        # Docker does). SIGKILL after STOP_GRACE_SECONDS still goes to the whole group.
        def terminate(self, pid: int) -> None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    honcho.manager.ProcessManager = TerminateTheProgramOnly  # honcho has no option for either of these
    honcho.manager.KILL_WAIT = STOP_GRACE_SECONDS
    main(argv)


if __name__ == "__main__":
    demo_supervise(sys.argv[1:])
