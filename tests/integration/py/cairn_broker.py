"""Start/stop a real Cairn broker process for the integration tests."""
import os
import random
import signal
import socket
import subprocess
import time
import uuid

READY_MARK = "listening on"
AMQP_READY_MARK = "amqp listening on"
HTTP_READY_MARK = "http listening on"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def cairn_bin():
    b = os.environ.get("CAIRN_BIN") or os.path.join(_REPO, "build", "cairn")
    return os.path.abspath(b)


_taken = set()


def free_port():
    """A free port below the kernel's ephemeral range, so that no proxy
    listener or outgoing connection (which get ephemeral ports) can take it
    between the check and the node's bind, nor while a killed node is down."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    lo = min(lo, 32768)
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(max(1024, lo - 12000), lo)
        if port in _taken:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _taken.add(port)
        return port
    raise RuntimeError("no free port below %d" % lo)


def unique_topic(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class BrokerError(AssertionError):
    pass


class Broker:
    """One broker process; keeps port and data dir across restarts."""

    def __init__(self, data_dir, log_path, settings=None, port=None, amqp_port=None,
                 http_port=None):
        self.bin = cairn_bin()
        self.port = port or free_port()
        # AMQP on a free port too, never the default 5672 (tests run side by side).
        self.amqp_port = amqp_port or free_port()
        # HTTP likewise, never the default 8080.
        self.http_port = http_port or free_port()
        self.http_url = "http://127.0.0.1:%d" % self.http_port
        self.host = "127.0.0.1"
        self.bootstrap = "%s:%d" % (self.host, self.port)
        self.data_dir = str(data_dir)
        self.log_path = str(log_path)
        self.settings = dict(settings or {})
        self.proc = None
        self.starts = 0
        os.makedirs(self.data_dir, exist_ok=True)

    # ------------------------------------------------------------ lifecycle
    def argv(self):
        a = [self.bin, "--listen", self.bootstrap,
             "--amqp-listen", "%s:%d" % (self.host, self.amqp_port),
             "--http-listen", "%s:%d" % (self.host, self.http_port), "--data-dir", self.data_dir]
        for k, v in self.settings.items():
            a += ["--set", "%s=%s" % (k, v)]
        return a

    def start(self, timeout=START_TIMEOUT):
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError("broker already running (pid %d)" % self.proc.pid)
        if not os.access(self.bin, os.X_OK):
            raise BrokerError("broker binary %s not found or not executable "
                              "(build it, or set CAIRN_BIN)" % self.bin)
        self.starts += 1
        with open(self.log_path, "ab") as f:
            f.write(("\n===== start #%d: %s\n" % (self.starts, " ".join(self.argv()))).encode())
            mark = f.tell()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)
        finally:
            log.close()
        deadline = time.time() + timeout
        while True:
            text = self._log_from(mark)
            if READY_MARK in text and AMQP_READY_MARK in text and HTTP_READY_MARK in text:
                return self
            rc = self.proc.poll()
            if rc is not None:
                raise BrokerError("broker exited with code %s before '%s'. stderr:\n%s"
                                  % (rc, READY_MARK, text[-8000:]))
            if time.time() > deadline:
                self._kill()
                raise BrokerError("broker did not print '%s' within %.0fs. stderr:\n%s"
                                  % (READY_MARK, timeout, self._log_from(mark)[-8000:]))
            time.sleep(0.02)

    def _log_from(self, pos):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(pos)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_text(self, limit=20000):
        t = self._log_from(0)
        return t[-limit:]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def kill9(self):
        """SIGKILL the broker (simulated crash) and reap it."""
        assert self.alive(), "kill9: broker is not running (exit code %s)" % (
            self.proc.returncode if self.proc else None)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        with open(self.log_path, "ab") as f:
            f.write(b"\n===== killed with SIGKILL by the test\n")

    def stop(self, timeout=STOP_TIMEOUT, check=True):
        """SIGTERM, wait, and (check=True) require a clean exit with status 0."""
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            if check and rc not in (None, 0, -signal.SIGKILL):
                raise BrokerError("broker had already exited with code %s. stderr:\n%s"
                                  % (rc, self.log_text(8000)))
            return rc
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise BrokerError("broker did not exit within %.0fs of SIGTERM. stderr:\n%s"
                              % (timeout, self.log_text(8000)))
        if check and rc != 0:
            raise BrokerError("broker exited with code %s after SIGTERM (want 0). stderr:\n%s"
                              % (rc, self.log_text(8000)))
        return rc

    def restart(self, timeout=START_TIMEOUT):
        """Clean stop (if running) then start again on the same port and data dir."""
        if self.alive():
            self.stop()
        return self.start(timeout)

    def cleanup(self):
        self._kill()
