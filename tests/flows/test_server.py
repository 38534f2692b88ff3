"""The local Prefect server a command owns: started once more if the first start fails,
then one line naming the log; never left behind by a killed command (see
test_night_killed.py for the kill)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import flows.server as server
from cohortflow.errors import CohortflowError, ConfigError
from cohortflow.settings import Settings

HEALTHY = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


@pytest.fixture
def starts(monkeypatch, tmp_path):
    """Replace the real server by scripts: each start takes the next behaviour."""
    behaviours: list[str] = []
    started: list[str] = []

    def fake_start(settings, api, log, *, scheduler=True):
        started.append(api)
        port = api.rsplit(":", 1)[1].split("/")[0]
        code = HEALTHY if behaviours.pop(0) == "healthy" else "import sys; sys.exit(3)"
        return subprocess.Popen([sys.executable, "-c", code, port], start_new_session=True)

    monkeypatch.setattr(server, "start_server", fake_start)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(server, "_api_of_imported_prefect", lambda: None)
    monkeypatch.setattr(server, "_prefect_imported", lambda: False)  # as in a fresh command
    settings = Settings.from_env(tmp_path)
    settings.prefect_home.mkdir(parents=True)
    return settings, behaviours, started


def test_server_that_fails_once_is_started_again_on_another_port(starts):
    """It retries once: the command gets the second server's URL, then stops it."""
    settings, behaviours, started = starts
    behaviours += ["exits", "healthy"]
    with server.prefect_api(settings, timeout=20, scheduler=False) as api:
        assert api == started[1] and server._healthy(f"{api}/health")
    assert len(started) == 2 and started[0] != started[1]
    assert not server._healthy(f"{started[1]}/health")  # stopped with the command


def test_the_command_imports_while_its_server_starts(starts):
    """``meanwhile`` runs once, during the first start, with Prefect already pointed at the
    server being started; after a failed first start the command gets the second."""
    settings, behaviours, started = starts
    behaviours += ["exits", "healthy"]
    seen: list[str] = []

    def meanwhile():
        seen.append(os.environ["PREFECT_API_URL"])

    with server.prefect_api(settings, timeout=20, scheduler=False, meanwhile=meanwhile) as api:
        assert seen == [started[0]] and api == started[1] == os.environ["PREFECT_API_URL"]
    assert "PREFECT_API_URL" not in os.environ


@pytest.mark.parametrize(
    "failure",
    [ImportError("a broken install"), ConfigError("no valid mapping file: C01.yaml")],
    ids=["import", "check"],
)
def test_a_failure_while_the_server_starts_stops_it(starts, failure):
    """An import error, a failed check (or Ctrl-C) during the start leaves no server and
    no address, and is the command's error: no second start, nothing run after it."""
    settings, behaviours, started = starts
    behaviours += ["healthy", "healthy"]

    def meanwhile():
        raise failure

    with pytest.raises(type(failure), match=str(failure)):
        with server.prefect_api(settings, timeout=20, scheduler=False, meanwhile=meanwhile):
            raise AssertionError("the command went on after its check failed")
    assert len(started) == 1 and "PREFECT_API_URL" not in os.environ
    assert not server._healthy(f"{started[0]}/health")


def test_prefect_imported_meanwhile_follows_a_second_start():
    """Prefect reads its settings once, at import: pointed at another port after a failed
    start, it must use that one (Prefect's own refresh of its global settings)."""
    code = (
        "import os; os.environ['PREFECT_API_URL'] = 'http://127.0.0.1:1111/api'\n"
        "import prefect.context, flows.server as s\n"
        "from prefect.settings import get_current_settings as current\n"
        "assert current().api.url == 'http://127.0.0.1:1111/api'\n"
        "s._point_prefect_at('http://127.0.0.1:2222/api')\n"
        "print(current().api.url)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "http://127.0.0.1:2222/api"


def test_server_that_fails_twice_is_one_line_with_the_log(starts):
    """It gives up after the second failure in one line naming the server's log."""
    settings, behaviours, _ = starts
    behaviours += ["exits", "exits"]
    with pytest.raises(CohortflowError) as failed:
        with server.prefect_api(settings, timeout=20, scheduler=False):
            pass
    message = str(failed.value)
    assert "\n" not in message and "tried twice" in message
    assert str(settings.prefect_home / "server.log") in message


def test_one_off_commands_run_the_server_without_its_scheduler(tmp_path):
    """It turns the scheduler off for run/fit/quality (no scheduled runs piling up in the
    workspace's database) and on for serve."""
    settings = Settings.from_env(tmp_path)
    one_off = server.server_environment(settings, scheduler=False)
    served = server.server_environment(settings, scheduler=True)
    assert one_off["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] == "false"
    assert served["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] == "true"
    assert "PREFECT_API_URL" not in one_off and one_off["DO_NOT_TRACK"] == "1"


@pytest.fixture
def serving(starts):
    """A fake serve's server (answers /api/health), advertised in the workspace as serve
    advertises it, from another live process (this test's parent: not this process)."""
    settings, behaviours, started = starts
    port = server.free_port()
    fake = subprocess.Popen([sys.executable, "-c", HEALTHY, str(port)], start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        server.wait_until_healthy(fake, api, settings.prefect_home / "fake.log", 20)
        yield settings, api, fake, behaviours, started
    finally:
        server.stop_server(fake)


def _advertise(settings: Settings, api: str, pid: int) -> None:
    (settings.prefect_home / server.SERVE_API).write_text(f'{{"pid": {pid}, "api": "{api}"}}')


def test_one_off_command_uses_the_server_serve_advertises_and_leaves_it_running(serving):
    """It points the command at serve's server without starting one, and does not stop
    it when the command ends (serve owns it)."""
    settings, api, _, _, started = serving
    _advertise(settings, api, os.getppid())
    with server.prefect_api(settings, timeout=20, scheduler=False) as used:
        assert used == api and os.environ["PREFECT_API_URL"] == api
    assert started == [] and "PREFECT_API_URL" not in os.environ
    assert server._healthy(f"{api}/health")


@pytest.mark.parametrize("stale", ["dead process", "server gone", "garbled", "serve itself"])
def test_stale_advertisement_means_a_server_of_our_own(serving, stale):
    """It starts its own server when the advertising process is dead, its server does not
    answer, the file is not what serve writes, or it is ``serve`` asking (scheduler on)."""
    settings, api, fake, behaviours, started = serving
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid = dead.pid if stale == "dead process" else os.getppid()
    _advertise(settings, api, pid)
    if stale == "server gone":
        server.stop_server(fake)
    if stale == "garbled":
        (settings.prefect_home / server.SERVE_API).write_text("{not json")
    behaviours.append("healthy")
    with server.prefect_api(settings, timeout=20, scheduler=stale == "serve itself") as used:
        assert used == started[0] != api
    assert not server._healthy(f"{started[0]}/health")  # ours: stopped with the command


def test_serve_advertises_its_server_while_it_serves_only(tmp_path):
    """It writes serve's PID and API while serving and removes the file when it stops,
    also when serving ends in an error."""
    settings = Settings.from_env(tmp_path)
    settings.prefect_home.mkdir(parents=True)
    path = settings.prefect_home / server.SERVE_API
    with pytest.raises(RuntimeError), server.advertise(settings, "http://127.0.0.1:9/api"):
        assert json.loads(path.read_text()) == {
            "pid": os.getpid(),
            "api": "http://127.0.0.1:9/api",
        }
        raise RuntimeError("the runner stopped")
    assert not path.exists()


def test_one_off_commands_run_their_flows_without_heartbeats():
    """Inside ``without_heartbeats`` Prefect sends none (its thread made every night's end
    wait up to 1 s); outside, Prefect's own setting is back."""
    from prefect.settings import get_current_settings

    outside = get_current_settings().flows.heartbeat_frequency
    with server.without_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == outside
