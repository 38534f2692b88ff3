"""The Prefect server a command owns, and what ``serve`` needs around Prefect's runner.

Every command that runs a flow starts its own server (``prefect_api``, scheduler off) and
stops it when it ends; the kernel stops it if the command is killed. ``serve`` does the
same with the scheduler on, plus a lock and a clean stop.

Why a server process of our own: without ``PREFECT_API_URL``, Prefect 3.9 starts a
temporary server (``SubprocessASGIServer``) with ``PREFECT__SERVER_EPHEMERAL=1`` forced in
its environment, and an ephemeral server starts only the services marked
``run_in_ephemeral`` (telemetry, database vacuum). The scheduler is not one of them and no
setting changes that (``PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED`` only turns it off on a
real server), so deployments registered there never get a scheduled run. ``serve``
therefore starts ``prefect server start`` on loopback (a free port, its database in the
workspace's Prefect home, analytics off, the scheduler on), waits for its health endpoint
and points this process at it. The server runs in its own session (process group), so a
Ctrl-C in the terminal reaches ``serve`` only, and ``serve`` stops the runner first (it
pauses its schedules through the API) and the server's whole group last, on every exit.
On Linux the server also gets SIGTERM if ``serve`` dies without cleaning up (SIGKILL).
With ``PREFECT_API_URL`` set, that server is used and nothing is started.

A one-off command (run, fit, quality) on a workspace that ``serve`` is serving uses
serve's server instead of starting its own (3-8 s of a night that has little to do):
``serve`` advertises its server in ``<workspace>/.prefect/serve.api`` (its PID and API
URL, removed when it stops) and a command uses it when that PID is alive and the server
answers its health endpoint; otherwise it starts its own as above. Such a command owns no
server, so a kill leaves nothing behind; if ``serve`` is stopped while it runs, its
Prefect calls fail and the night fails, as with any server that goes away.

One ``serve`` per workspace: two would run every night twice on one warehouse. An
``fcntl.flock`` on ``<workspace>/.prefect/serve.lock`` (which holds the owner's PID) is
released by the kernel when the process ends, however it ends: no stale lock to clear.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cohortflow.children import die_with_parent
from cohortflow.errors import CohortflowError
from cohortflow.locks import LockHeld, exclusive, process_alive
from cohortflow.settings import Settings

STARTUP_TIMEOUT = 90.0  # a cold start (migrations on a new database) takes 10-20 s
STOP_TIMEOUT = 10.0
SERVE_API = "serve.api"  # in the Prefect home: the server a running serve advertises


class ServerNotStarted(CohortflowError):
    """The server exited or did not answer in time: started once more, on another port."""


class ServeStopped(BaseException):
    """SIGTERM before Prefect's runner took over its handling: stop as Ctrl-C would.

    A ``BaseException``, as ``KeyboardInterrupt`` is: Prefect's start-up code catches
    ``Exception`` in places, and a swallowed stop left ``serve`` running.
    """


@contextmanager
def serve_lock(settings: Settings) -> Iterator[None]:
    """Hold the workspace's serve lock, or fail at once naming the process that holds it."""
    try:
        with exclusive(settings.prefect_home / "serve.lock", str(os.getpid())):
            yield
    except LockHeld as held:
        raise CohortflowError(
            f"cohortflow serve is already running on {settings.workspace} "
            f"(PID {held.holder or 'unknown'}); stop it first (kill -TERM it, or Ctrl-C "
            "where it runs)"
        ) from None


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into an exception while ``serve`` starts up, so cleanup still runs.

    Prefect's runner installs its own SIGTERM handler (a graceful stop) once it starts;
    before that, the default action would kill this process and skip the ``finally``
    that stops the server.
    """

    def _raise(signum: int, frame: object) -> None:
        raise ServeStopped(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    except ServeStopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def prefect_api(
    settings: Settings,
    *,
    timeout: float = STARTUP_TIMEOUT,
    scheduler: bool = True,
    meanwhile: Callable[[], object] = lambda: None,
) -> Iterator[str | None]:
    """The Prefect API a command talks to: ``PREFECT_API_URL``, else a server we own.

    Call before Prefect is imported: Prefect reads ``PREFECT_API_URL`` once, at import.
    ``scheduler``: ``serve`` needs the scheduler service; a one-off command (run, fit,
    quality) does not, and must not create scheduled runs of deployments registered in
    the workspace's Prefect database. A command called in a process that imported Prefect
    already (the tests) uses that process's server, or Prefect's own temporary one.
    ``meanwhile``: the command's own start-up (its imports, Prefect's included), run while
    the server starts (about 3 s, in another process): called once, before the yield.
    """
    given = os.environ.get("PREFECT_API_URL") or _api_of_imported_prefect()
    if given or (_prefect_imported() and not scheduler):
        meanwhile()
        yield given
        return
    served = None if scheduler else advertised_api(settings)
    if served is not None:
        with _using(served):
            meanwhile()
            yield served
        return
    process, api = _start_owned_server(settings, timeout, scheduler, meanwhile)
    try:
        yield api
    finally:
        _drain_prefect_workers()  # the run's last logs and events, while the server listens
        os.environ.pop("PREFECT_API_URL", None)
        stop_server(process)


@contextmanager
def without_heartbeats() -> Iterator[None]:
    """A one-off command's flow runs send no heartbeats (Prefect imported by then).

    Prefect 3.9's heartbeat thread sleeps in whole seconds, and a flow's end waits for it:
    0.5 s on average, up to 1 s, of every night run from the command line. Nothing reads
    those heartbeats: the command's own server has no automation, and a killed night is
    found by the next run (``runs``), not by a missing heartbeat. ``serve``'s scheduled
    runs keep them.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@contextmanager
def _using(api: str) -> Iterator[None]:
    """Point this process at a server it does not own (serve's): never stopped here."""
    os.environ["PREFECT_API_URL"] = api
    try:
        yield
    finally:
        _drain_prefect_workers()
        os.environ.pop("PREFECT_API_URL", None)


@contextmanager
def advertise(settings: Settings, api: str) -> Iterator[None]:
    """While ``serve`` serves: its PID and server in ``serve.api`` (written whole, then
    renamed), removed when it stops; a SIGKILL leaves the file, and its dead PID says so."""
    path = settings.prefect_home / SERVE_API
    partial = path.with_name(f".{SERVE_API}.partial")
    partial.write_text(json.dumps({"pid": os.getpid(), "api": api}), encoding="utf-8")
    partial.replace(path)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def advertised_api(settings: Settings) -> str | None:
    """The API of the server a running ``serve`` of this workspace advertises, if its
    process is alive and the server answers now; else None (start one of our own)."""
    try:
        found = json.loads((settings.prefect_home / SERVE_API).read_text(encoding="utf-8"))
        pid, api = int(found["pid"]), str(found["api"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or not process_alive(pid) or not api.startswith("http://127.0.0.1:"):
        return None
    return api if _healthy(f"{api}/health") else None


def _drain_prefect_workers() -> None:
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    EventsWorker.drain_all(timeout=5)


def _prefect_imported() -> bool:
    return "prefect" in sys.modules


def _api_of_imported_prefect() -> str | None:
    if not _prefect_imported():
        return None
    from prefect.settings import PREFECT_API_URL  # imported already: costs nothing

    return PREFECT_API_URL.value() or None


def _start_owned_server(
    settings: Settings, timeout: float, scheduler: bool, meanwhile: Callable[[], object]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server, and once more on another port if the first start fails (a slow
    machine at 02:00, a port taken meanwhile); the second failure is one line + the log.

    The server's address is known before it answers (a port we chose), so this process
    points Prefect at it first and does ``meanwhile`` while the server starts.
    """
    log = settings.prefect_home / "server.log"
    for attempt in (1, 2):
        api = f"http://127.0.0.1:{free_port()}/api"
        _point_prefect_at(api)
        process = start_server(settings, api, log, scheduler=scheduler)
        try:
            if attempt == 1:
                meanwhile()  # its failure (a check, an import, Ctrl-C) is the command's
            wait_until_healthy(process, api, log, timeout)
            return process, api
        except BaseException as failed:  # no server left behind, whatever failed
            stop_server(process)
            os.environ.pop("PREFECT_API_URL", None)
            if not isinstance(failed, ServerNotStarted):
                raise
            if attempt == 2:
                raise CohortflowError(f"{failed} (tried twice)") from None
    raise AssertionError("unreachable")


def _point_prefect_at(api: str) -> None:
    """``PREFECT_API_URL`` for this process, and for Prefect's settings if it was imported
    meanwhile (it reads its settings once: a second start has another port)."""
    os.environ["PREFECT_API_URL"] = api
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


def free_port() -> int:
    """A loopback port free now (the server binds it a moment later; a clash fails fast)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(settings: Settings, *, scheduler: bool = True) -> dict[str, str]:
    """This process's environment for the server: offline, no API URL, the scheduler on
    for ``serve`` only."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.setdefault("PREFECT_HOME", str(settings.prefect_home))
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["DO_NOT_TRACK"] = "1"
    env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "true" if scheduler else "false"
    return env


def start_server(
    settings: Settings, api: str, log: Path, *, scheduler: bool = True
) -> subprocess.Popen[bytes]:
    """``prefect server start`` on ``api``'s port, in its own session, output to ``log``."""
    port = api.rsplit(":", 1)[1].split("/")[0]
    command = [sys.executable, "-m", "prefect", "server", "start"]
    command += ["--host", "127.0.0.1", "--port", port]
    with open(log, "ab") as output:
        return subprocess.Popen(
            command,
            env=server_environment(settings, scheduler=scheduler),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # preexec_fn runs between fork and exec: safe here, it only calls prctl
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )


def wait_until_healthy(
    process: subprocess.Popen[bytes], api: str, log: Path, timeout: float
) -> None:
    """Poll the server's health endpoint; a dead or slow server is one clear error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerNotStarted(
                f"the local Prefect server exited with code {process.returncode}; see {log}"
            )
        if _healthy(f"{api}/health"):
            return
        time.sleep(0.05)  # it answers within about 3 s: poll often, a request is cheap
    raise ServerNotStarted(
        f"the local Prefect server did not answer on {api} within {timeout:.0f} s; see {log}"
    )


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # a loopback URL we built
            return bool(response.status == 200)
    except OSError:
        return False


def stop_server(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        _reap_group(process.pid)
        break


def _reap_group(pgid: int) -> None:
    """Kill any straggler the server left in its group (e.g. a uvicorn worker)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def serve_deployments(settings: Settings) -> None:
    """Serve cohortflow's deployments until a signal; Prefect's runner handles SIGTERM."""
    from prefect import serve

    from flows.deployments import runner_deployments

    try:
        serve(*runner_deployments(settings))
    except SystemExit as exc:  # the runner's SIGTERM handler, before it has started
        if exc.code not in (0, None):
            raise
    finally:  # send the runner's last log lines while the server still listens
        _drain_prefect_workers()
