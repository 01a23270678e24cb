"""Fixtures for the Cairn integration tests.

* ``broker`` (module scope): one broker per test module. A module may override
  the module-scoped ``broker_settings`` fixture to pass ``--set key=value``.
* ``broker_factory`` (function scope): start extra brokers with their own
  settings; used by restart tests. All are killed at teardown.
* ``topic`` / ``topic_name``: unique topic names.

Each broker's stdout+stderr go to a file; on a test failure the tail of that
file is attached to the report (shown in the "Captured cairn" section).
"""
import signal
import threading

import pytest

from cairn_broker import Broker, unique_topic

DEFAULT_TEST_TIMEOUT = 180


def pytest_configure(config):
    config.addinivalue_line("markers", "cairn_timeout(seconds): per-test wall clock limit")


@pytest.fixture(scope="module")
def broker_settings():
    return {}


@pytest.fixture(scope="module")
def broker(broker_settings, tmp_path_factory):
    d = tmp_path_factory.mktemp("cairn")
    b = Broker(d / "data", d / "broker.log", broker_settings)
    b.start()
    try:
        yield b
        b.stop(check=True)  # SIGTERM must give a clean exit
    finally:
        b.cleanup()


@pytest.fixture
def broker_factory(tmp_path):
    made = []

    def make(settings=None, start=True):
        n = len(made)
        b = Broker(tmp_path / ("data%d" % n), tmp_path / ("broker%d.log" % n), settings)
        made.append(b)
        if start:
            b.start()
        return b

    make.brokers = made
    yield make
    for b in made:
        b.cleanup()


@pytest.fixture
def topic():
    return unique_topic("it")


@pytest.fixture
def topic_name():
    return unique_topic


# ---------------------------------------------------------------- per-test timeout

@pytest.fixture(autouse=True)
def _cairn_timeout(request):
    m = request.node.get_closest_marker("cairn_timeout")
    secs = int(m.args[0]) if m else DEFAULT_TEST_TIMEOUT
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded %ds (cairn_timeout)" % secs)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(secs)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- show broker log on failure

def _brokers_of(item):
    seen = []
    for v in getattr(item, "funcargs", {}).values():
        if isinstance(v, Broker):
            seen.append(v)
        elif callable(v) and hasattr(v, "brokers"):
            seen.extend(v.brokers)
    return seen


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for b in _brokers_of(item):
        state = "running" if b.alive() else "NOT running (exit code %s)" % (
            b.proc.returncode if b.proc else "never started")
        rep.sections.append(("cairn %s [%s] %s" % (b.bootstrap, state, b.log_path),
                             b.log_text(12000)))
