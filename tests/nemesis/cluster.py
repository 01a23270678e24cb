"""Drive N real `cairn` processes as one cluster for the nemesis harness.

Each node has its own data directory and log file (kept for the report), a
Kafka listener on a free loopback port (clients connect directly) and a
cluster listener; its ``--peers`` names, for every other node j, the
NetProxy listener of the pair (i, j), so that every node-to-node connection
goes through the proxy (netproxy.py). Children get PR_SET_PDEATHSIG=SIGKILL:
they die with the driver, whatever happens to it.

Faults on processes: kill9, pause (SIGSTOP) / resume (SIGCONT), restart from
the same data directory.
"""
import ctypes
import os
import signal
import subprocess
import sys
import time

from netproxy import NetProxy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "py"))
from cairn_broker import free_port  # noqa: E402

READY_MARK = "listening on"
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setsid()


class Node:
    def __init__(self, cl, node_id, data_dir, log_path):
        self.cl = cl
        self.id = node_id
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.cport = free_port()
        self.hport = free_port()        # HTTP (the admin API: a node's removal)
        self.aport = free_port()        # AMQP (listening only in the AMQP mode: cl.amqp)
        self.join = False               # start with cluster.join (it joined, data wiped)
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.proc = None
        self.paused = False
        self.cut = False     # the last exit was a power cut by the nemesis
        self.starts = 0
        os.makedirs(data_dir, exist_ok=True)

    def argv(self, peers):
        a = [self.cl.bin, "--node-id", str(self.id), "--listen", self.bootstrap,
             "--cluster-listen", "127.0.0.1:%d" % self.cport, "--peers", peers,
             "--data-dir", self.data_dir,
             "--amqp-listen", "127.0.0.1:%d" % self.aport if self.cl.amqp else "off",
             "--http-listen", "127.0.0.1:%d" % self.hport]
        if self.join:
            a.append("--join")
        for k, v in self.cl.settings.items():
            a += ["--set", "%s=%s" % (k, v)]
        return a

    def note(self, text):
        with open(self.log_path, "ab") as f:
            f.write(("\n===== %.3f %s\n" % (time.time(), text)).encode())

    def start(self, wait=True, timeout=15.0):
        assert not self.alive(), "node %d already running" % self.id
        self.starts += 1
        self.cut = False
        argv = self.argv(self.cl.peers_for(self.id))
        self.note("start #%d: %s" % (self.starts, " ".join(argv)))
        mark = os.path.getsize(self.log_path)
        log = open(self.log_path, "ab")
        env = dict(os.environ)
        # The fault-injection build's power loss (SIGUSR1, power_cut): mode 1
        # cuts every file to what was fsynced, mode 2 to a random length
        # between that and what was written, garbling part of the tail.
        env["CAIRN_FAULT_MODE"] = str(self.cl.power_mode)
        env["CAIRN_FAULT_SEED"] = str(self.cl.seed * 1000 + self.id * 100 + self.starts)
        if self.cl.faketime:
            # Wall-clock skew (clock-* faults): libfaketime reads this node's
            # offset from its file at most once a second; the monotonic clock
            # (timeouts, elections) stays true, as NTP steps only the wall
            # clock.
            env["LD_PRELOAD"] = self.cl.faketime
            env["FAKETIME_TIMESTAMP_FILE"] = self.clock_path
            env["FAKETIME_CACHE_DURATION"] = "1"
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
            # An ASan build wants its runtime first in the library list;
            # preloading libfaketime ahead of it is harmless here.
            asan = env.get("ASAN_OPTIONS", "")
            env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=_die_with_parent, env=env)
        finally:
            log.close()
        self.paused = False
        if wait:
            self.wait_ready(mark, timeout)

    def wait_ready(self, mark, timeout):
        deadline = time.time() + timeout
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                text = f.read().decode("utf-8", "replace")
            if READY_MARK in text:
                return
            if self.proc.poll() is not None:
                raise RuntimeError("node %d exited with %s at start:\n%s"
                                   % (self.id, self.proc.returncode, text[-4000:]))
            if time.time() > deadline:
                raise RuntimeError("node %d not ready within %.0fs:\n%s"
                                   % (self.id, timeout, text[-4000:]))
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def clock_path(self):
        return os.path.join(self.cl.workdir, "clock%d" % self.id)

    def set_clock(self, offset_s):
        """Step this node's wall clock to true time + offset_s (seconds,
        may be negative); seen by the node within about a second."""
        tmp = self.clock_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+d\n" % int(offset_s))
        os.replace(tmp, self.clock_path)

    def exit_status(self):
        return None if self.proc is None else self.proc.poll()

    def fault_build(self):
        with open(self.log_path, "rb") as f:
            return b"fault injection build" in f.read()

    def power_cut(self):
        """Simulated power loss (fault build): every file cut back to what
        was fsynced (or beyond, garbled: mode 2), exit 137. Without the
        fault build, kill -9 instead (the page cache survives it)."""
        if not self.alive():
            return False
        if not self.fault_build():
            self.note("not a fault-injection build: SIGKILL instead of a power cut")
            return self.kill9()
        if self.paused:
            self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGUSR1)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.paused = False
        self.cut = self.proc.returncode == 137
        self.note("power cut (SIGUSR1, fault mode %d) by the nemesis, exit %s"
                  % (self.cl.power_mode, self.proc.returncode))
        return True

    def kill9(self):
        if not self.alive():
            return False
        if self.paused:
            self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.paused = False
        self.note("killed with SIGKILL by the nemesis")
        return True

    def pause(self):
        if self.alive() and not self.paused:
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True
            self.note("paused (SIGSTOP) by the nemesis")
            return True
        return False

    def resume(self):
        if self.alive() and self.paused:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False
            self.note("resumed (SIGCONT) by the nemesis")
            return True
        return False

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the exit status (SIGKILL after timeout)."""
        if not self.alive():
            return self.exit_status()
        self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            return "timeout"

    def log_tail(self, nbytes=6000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - nbytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Cluster:
    def __init__(self, n, workdir, binary, settings=None, seed=0, amqp=False):
        self.n = n
        self.amqp = amqp    # the nodes listen for AMQP (nemesis --amqp)
        self.workdir = workdir
        self.bin = os.path.abspath(binary)
        self.settings = dict(settings or {})
        self.unclean = []   # (node, status) of SIGTERM stops that did not exit 0
        self.seed = seed
        self.power_mode = 1 + seed % 2   # fault build's cut mode (power_cut)
        # libfaketime (Debian's libfaketime) for the clock-* faults: every
        # node runs under it when it is there, at offset 0 until a fault.
        ft = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
        self.faketime = ft if os.path.exists(ft) else None
        os.makedirs(workdir, exist_ok=True)
        self.nodes = {i: Node(self, i, os.path.join(workdir, "d%d" % i),
                              os.path.join(workdir, "n%d.log" % i)) for i in range(1, n + 1)}
        for nd in self.nodes.values():
            open(nd.log_path, "ab").close()
            nd.set_clock(0)
        self.proxy = NetProxy(seed=seed)
        for i in self.ids():
            for j in self.ids():
                if i != j:
                    self.proxy.add_link(i, j, self.nodes[j].cport)

    def ids(self):
        return sorted(self.nodes)

    def node(self, i):
        return self.nodes[i]

    def peers_for(self, i):
        parts = []
        for j in self.ids():
            port = self.nodes[j].cport if j == i else self.proxy.links[(i, j)]
            parts.append("%d@127.0.0.1:%d" % (j, port))
        return ",".join(parts)

    def start(self):
        for nd in self.nodes.values():
            nd.start(wait=False)
        for nd in self.nodes.values():
            nd.wait_ready(0, 15.0)
        return self

    def bootstrap(self, alive_only=True):
        return ",".join(nd.bootstrap for nd in self.nodes.values()
                        if not alive_only or (nd.alive() and not nd.paused))

    def all_bootstrap(self):
        return ",".join(nd.bootstrap for nd in self.nodes.values())

    def dead(self):
        """Nodes that exited without the nemesis killing them (crashes)."""
        return [i for i, nd in self.nodes.items()
                if nd.proc is not None and nd.proc.poll() not in (None, -signal.SIGKILL) and
                not nd.cut]

    def heal_all(self):
        """Heal the network, resume paused nodes, restart dead ones."""
        self.proxy.heal()
        for nd in self.nodes.values():
            nd.set_clock(0)
            nd.resume()
        for nd in self.nodes.values():
            if not nd.alive():
                nd.start()

    def stop(self):
        st = {}
        for i, nd in self.nodes.items():
            st[i] = nd.stop()
        self.proxy.close()
        return st
