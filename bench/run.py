#!/usr/bin/env python3
"""Cairn vs peers benchmark (issue 4): `make bench` runs `bench/run.py full`.

Starts each server on 127.0.0.1 with its data in a temp dir, drives it with
our C load generators (build/tools/loadgen, lg_redis, lg_nats, lg_amqp, lg_http; all
share tools/lg/lg_common.c), measures the machine's limits with
build/tools/machlimits, and writes a terminal table, bench/results/<date>.md
and .json and PNG plots (gnuplot). `smoke` runs Cairn only with tiny counts
into a temp dir (part of `make test`). Every phase is bounded in records and
seconds; every server is stopped by pid (SIGTERM, SIGKILL after 15 s)."""
import datetime, json, os, platform, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(ROOT, "build")))
TOOLS = os.path.join(BUILD, "tools")
HZ = os.sysconf("SC_CLK_TCK")
MODE = sys.argv[1] if len(sys.argv) > 1 else "full"
SMOKE = MODE == "smoke"
if MODE not in ("full", "smoke"):
    sys.exit("usage: bench/run.py [full|smoke]")

# Record counts per phase (full run sized so all systems fit in ~10 minutes).
N = {100: 300000, 1024: 100000} if not SMOKE else {100: 2000, 1024: 1000}
PARTS = [1, 16] if not SMOKE else [1, 4]
E2E_RATE = 5000 if not SMOKE else 1000
E2E_SECS = 4 if not SMOKE else 1
MAX_S = 25 if not SMOKE else 10
WINDOW = 1000
# Cairn finishes the peers' counts in ~0.1 s, too short to time (connect and
# metadata dominate) or to read CPU ticks from, so it gets 10x the records.
COUNT_SCALE = {"cairn": 1 if SMOKE else 10, "cairn-tls": 1 if SMOKE else 10, "cairn-authz": 1 if SMOKE else 10}
# HTTP (lg_http): batched produce and its SSE read at the peers' counts; one
# record per request waits for its own fsync, so a tenth of them.
HTTP_BATCH, HTTP_BATCH_CONNS, HTTP_SINGLE_CONNS = 100, 10, 16
HTTP_SINGLE_DIV = 10

def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port, proc, secs):
    end = time.time() + secs
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return True
        except OSError:
            time.sleep(0.1)
    return False

def listener_pid(port):
    out = subprocess.run(["ss", "-H", "-ltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    for tok in out.replace(",", " ").split():
        if tok.startswith("pid="):
            return int(tok[4:])
    return None

def cpu_ticks(pid):
    try:
        rest = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except OSError:
        return None

def stop_pid(pid, name):
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(150):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    log(f"{name} pid {pid} ignored SIGTERM for 15 s; SIGKILL")
    os.kill(pid, signal.SIGKILL)

class Server:
    """One server process: start() -> port; pid is the process that listens."""
    def __init__(self, name, tmp):
        self.name, self.dir, self.procs, self.pid, self.extra_pids = name, os.path.join(tmp, name), [], None, []
        os.makedirs(self.dir, exist_ok=True)
    def spawn(self, argv, env=None, startup=20):
        self.port = self.port if hasattr(self, "port") else free_port()
        errf = open(os.path.join(self.dir, "server.log"), "w")
        p = subprocess.Popen(argv, stdout=errf, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        self.procs.append(p)
        if not wait_port(self.port, p, startup):
            raise RuntimeError(f"{self.name} did not listen on {self.port} within {startup} s (see {self.dir}/server.log)")
        self.pid = listener_pid(self.port) or p.pid
    def stop(self):
        stop_pid(self.pid, self.name)
        for p in self.procs:
            if p.pid != self.pid:
                stop_pid(p.pid, self.name)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.extra_pids:
            stop_pid(pid, self.name + " helper")

def start_cairn(tmp):
    s = Server("cairn", tmp); s.port = free_port()
    s.spawn([os.path.abspath(os.environ.get("CAIRN_BIN", os.path.join(BUILD, "cairn"))), "--listen", f"127.0.0.1:{s.port}", "--amqp-listen", "off", "--http-listen", "off",
             "--data-dir", os.path.join(s.dir, "data"), "--set", "num.partitions=1"])
    return s

# TLS rows (issue 13): a throwaway CA and server certificate made with the
# openssl command in the run's temp dir; the generator trusts the CA.
TLS = {}

def make_tls_files(d):
    os.makedirs(d, exist_ok=True)
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=cairn bench CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=localhost")
    open(os.path.join(d, "ext.cnf"), "w").write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    TLS.update(ca=os.path.join(d, "ca.pem"), cert=os.path.join(d, "server.pem"), key=os.path.join(d, "server.key"))

def start_cairn_tls(tmp):
    """Cairn with an SSL listener on the port the generator uses (and a plaintext one on another)."""
    make_tls_files(os.path.join(tmp, "tls"))
    s = Server("cairn-tls", tmp); s.port = free_port()
    s.spawn([os.path.abspath(os.environ.get("CAIRN_BIN", os.path.join(BUILD, "cairn"))), "--amqp-listen", "off", "--http-listen", "off",
             "--set", f"listeners=PLAINTEXT://127.0.0.1:{free_port()},SSL://127.0.0.1:{s.port}",
             "--set", "ssl.certificate.location=" + TLS["cert"], "--set", "ssl.key.location=" + TLS["key"],
             "--data-dir", os.path.join(s.dir, "data"), "--set", "num.partitions=1"])
    return s

def start_cairn_authz(tmp):
    """Cairn with SCRAM logins and the authorizer on (issue 13: ACL checks must
    cost nothing measurable): a user, made offline, whose ACLs allow the bench's
    topics (prefixed b and e), creating them, and idempotent writes; not a
    super user, so every request goes through the ACL decision."""
    s = Server("cairn-authz", tmp); s.port = free_port()
    binp = os.path.abspath(os.environ.get("CAIRN_BIN", os.path.join(BUILD, "cairn")))
    data = os.path.join(s.dir, "data")
    subprocess.run([binp, "user", "add", "bench", "--password", "bench-pw", "--data-dir", data],
                   check=True, capture_output=True)
    hport = free_port()
    s.spawn([binp, "--amqp-listen", "off", "--http-listen", f"127.0.0.1:{hport}",
              "--set", f"listeners=PLAINTEXT://127.0.0.1:{free_port()},SASL_PLAINTEXT://127.0.0.1:{s.port}",
              "--set", "authorizer.enabled=true", "--data-dir", data, "--set", "num.partitions=1"])
    http = ["--http", f"127.0.0.1:{hport}"]
    for args in (["--operation", "All", "--topic", "b", "--prefixed"], ["--operation", "All", "--topic", "e", "--prefixed"],
                 ["--operation", "Create", "--operation", "IdempotentWrite", "--cluster"]):
        subprocess.run([binp, "acl", "add", "--allow", "User:bench", *args, *http], check=True, capture_output=True)
    return s

def authz_gen(*extra):
    return lambda port: [os.path.join(TOOLS, "loadgen"), "--addr", f"127.0.0.1:{port}", *extra,
                         "-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=SCRAM-SHA-256",
                         "-X", "sasl.username=bench", "-X", "sasl.password=bench-pw"]

def tls_gen(*extra):
    """loadgen over TLS; the CA path is known once the server started."""
    return lambda port: [os.path.join(TOOLS, "loadgen"), "--addr", f"127.0.0.1:{port}", *extra,
                         "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + TLS["ca"]]

def start_cairn_amqp(tmp):
    """Cairn with its AMQP listener on the port the generator uses (Kafka on another free port)."""
    s = Server("cairn-amqp", tmp); s.port = free_port()
    s.spawn([os.path.abspath(os.environ.get("CAIRN_BIN", os.path.join(BUILD, "cairn"))), "--listen", f"127.0.0.1:{free_port()}",
             "--amqp-listen", f"127.0.0.1:{s.port}", "--http-listen", "off",
             "--data-dir", os.path.join(s.dir, "data")])
    return s

def start_cairn_http(tmp):
    """Cairn with its HTTP listener on the port the generator uses (Kafka on another free port)."""
    s = Server("cairn-http", tmp); s.port = free_port()
    s.spawn([os.path.abspath(os.environ.get("CAIRN_BIN", os.path.join(BUILD, "cairn"))), "--listen", f"127.0.0.1:{free_port()}",
             "--amqp-listen", "off", "--http-listen", f"127.0.0.1:{s.port}",
             "--data-dir", os.path.join(s.dir, "data")])
    return s

def start_redis(tmp, fsync):
    s = Server(f"redis-{fsync}", tmp); s.port = free_port()
    s.spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(s.port), "--dir", s.dir, "--save", "",
             "--appendonly", "yes", "--appendfsync", fsync, "--protected-mode", "no", "--daemonize", "no"])
    return s

def start_nats(tmp):
    s = Server("nats", tmp); s.port = free_port()
    s.spawn(["nats-server", "-a", "127.0.0.1", "-p", str(s.port), "-js", "-sd", os.path.join(s.dir, "js")])
    return s

def start_rabbit(tmp):
    s = Server("rabbitmq", tmp); s.port = free_port(); dist = free_port(); epmd = free_port()
    with open(os.path.join(s.dir, "rabbit.conf"), "w") as f:
        f.write(f"listeners.tcp.1 = 127.0.0.1:{s.port}\nloopback_users = none\n")
    open(os.path.join(s.dir, "plugins"), "w").write("[].\n")
    env = dict(os.environ, HOME=s.dir, RABBITMQ_NODENAME=f"bench{s.port}@localhost",
               RABBITMQ_MNESIA_BASE=os.path.join(s.dir, "mnesia"), RABBITMQ_LOG_BASE=os.path.join(s.dir, "log"),
               RABBITMQ_CONFIG_FILE=os.path.join(s.dir, "rabbit.conf"),
               RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(s.dir, "plugins"),
               ERL_EPMD_ADDRESS="127.0.0.1", ERL_EPMD_PORT=str(epmd), RABBITMQ_DIST_PORT=str(dist),
               RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
    s.spawn(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env, startup=60)
    e = listener_pid(epmd)
    if e:
        s.extra_pids.append(e)
    return s

# system label -> (class, generator argv prefix builder)
def gen(tool, *extra):
    return lambda port: [os.path.join(TOOLS, tool), "--addr", f"127.0.0.1:{port}", *extra]

CONFIGS = [
    # name, durability class, server key, generator
    ("cairn acks=all", "durable", "cairn", gen("loadgen", "--acks", "all")),
    ("cairn acks=1", "relaxed", "cairn", gen("loadgen", "--acks", "1")),
    ("cairn tls acks=all", "durable", "cairn-tls", tls_gen("--acks", "all")),
    ("cairn tls acks=1", "relaxed", "cairn-tls", tls_gen("--acks", "1")),
    ("cairn authz acks=1", "relaxed", "cairn-authz", authz_gen("--acks", "1")),
    ("cairn amqp durable", "durable", "cairn-amqp", gen("lg_amqp", "--window", str(WINDOW))),
    ("cairn amqp transient", "relaxed", "cairn-amqp", gen("lg_amqp", "--transient", "--window", str(WINDOW))),
    ("cairn http batch", "durable", "cairn-http", gen("lg_http", "--batch", str(HTTP_BATCH), "--connections", str(HTTP_BATCH_CONNS))),
    ("cairn http single", "durable", "cairn-http", gen("lg_http", "--batch", "1", "--connections", str(HTTP_SINGLE_CONNS))),
    ("redis always", "durable", "redis-always", gen("lg_redis", "--window", str(WINDOW))),
    ("redis everysec", "relaxed", "redis-everysec", gen("lg_redis", "--window", str(WINDOW))),
    ("nats jetstream", "relaxed", "nats", gen("lg_nats", "--window", str(WINDOW))),
    ("rabbitmq classic", "durable", "rabbitmq", gen("lg_amqp", "--window", str(WINDOW))),
    ("rabbitmq quorum", "durable", "rabbitmq", gen("lg_amqp", "--quorum", "--window", str(WINDOW))),
]
STARTERS = {"cairn": start_cairn, "cairn-tls": start_cairn_tls, "cairn-authz": start_cairn_authz, "cairn-amqp": start_cairn_amqp, "cairn-http": start_cairn_http, "redis-always": lambda t: start_redis(t, "always"),
            "redis-everysec": lambda t: start_redis(t, "everysec"), "nats": start_nats, "rabbitmq": start_rabbit}
DURABILITY = {
    "cairn acks=all": "acked after fdatasync (group commit)",
    "cairn acks=1": "acked after write to page cache; fsync every 1 s",
    "cairn tls acks=all": "as cairn acks=all, over an SSL:// listener (TLS 1.3, ECDSA P-256 certificate)",
    "cairn tls acks=1": "as cairn acks=1, over an SSL:// listener (TLS 1.3, ECDSA P-256 certificate)",
    "cairn authz acks=1": "as cairn acks=1, logged in with SCRAM-SHA-256, authorizer on (prefixed ACLs, not a super user)",
    "cairn amqp durable": "AMQP: durable queue, persistent msgs, confirm after fdatasync (group commit)",
    "cairn amqp transient": "AMQP: non-durable queue, transient msgs (memory only), confirm after routing",
    "cairn http batch": f"HTTP: POST /topics/T/records, {HTTP_BATCH} records a request, {HTTP_BATCH_CONNS} keep-alive connections; "
                        "answered after fdatasync (group commit); consume = one SSE stream (GET /topics/T/stream)",
    "cairn http single": f"HTTP: one record a request, {HTTP_SINGLE_CONNS} keep-alive connections; answered after fdatasync (group commit)",
    "redis always": "appendfsync always: reply after the AOF fsync of each event-loop pass",
    "redis everysec": "appendfsync everysec: reply after write; fsync every 1 s",
    "nats jetstream": "file storage, PubAck after write; NATS 2.9 never fsyncs (relaxed)",
    "rabbitmq classic": "durable classic queue, persistent msgs, confirm after fsync",
    "rabbitmq quorum": "quorum queue on one node (Raft WAL fsync before confirm)",
}

def run_phase(server, argv, records):
    t0 = cpu_ticks(server.pid)
    started = time.time()
    try:
        p = subprocess.run(argv + ["--json", "--quiet"], capture_output=True, text=True, timeout=MAX_S * 3 + 30)
        out, rc, err = p.stdout, p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        out, rc, err = "", -1, "timeout"
    t1 = cpu_ticks(server.pid)
    js = None
    for line in out.splitlines():
        if line.startswith("{"):
            js = json.loads(line)
    if js is None:
        return {"ok": False, "note": ((err or "no output").strip().splitlines() or ["?"])[0][:200], "wall": time.time() - started}
    # loadgen's produce/consume keep their original JSON; normalise.
    rec = js.get("delivered", js.get("records", 0))
    lat = js.get("latency_us")
    if lat is None and "latency_ms" in js:
        lat = {k: js["latency_ms"].get(k, 0) * 1000 for k in ("p50", "p99", "p999", "max")}
    cpu = (t1 - t0) / HZ if t0 is not None and t1 is not None else None
    return {"ok": rc == 0, "records": rec, "seconds": js["seconds"], "rps": js["records_per_sec"],
            "mbps": js["mb_per_sec"], "lat": lat or {}, "cpu_s": cpu,
            "cpu_s_per_m": cpu / (rec / 1e6) if cpu is not None and rec else None,
            "note": js.get("note") or js.get("first_error") or ("" if rc == 0 else (err.strip()[-200:] or f"exit {rc}"))}

def run_system(cfgs, server, results):
    for name, cls, _, g in cfgs:
        base = g(server.port)
        tag = name.replace(" ", "-").replace("=", "")
        for size in (100, 1024):
            for parts in PARTS:
                n = N[size] * COUNT_SCALE.get(server.name, 1)
                topic = f"b{size}p{parts}{tag.replace('-', '')}"
                pa = ["--partitions", str(parts)]
                common = ["--topic", topic, "--size", str(size), "--records", str(n)]
                ms = ["--max-seconds", str(MAX_S)] if not base[0].endswith("loadgen") else []
                prod = run_phase(server, base[:1] + ["produce"] + base[1:] + common + pa + ms, n)
                got = prod.get("records", 0) if prod.get("ok") or prod.get("records") else 0
                results.append(dict(system=name, cls=cls, scenario="produce", size=size, partitions=parts, **prod))
                log(f"{name:18} produce {size:5} B p{parts:<2}: {prod.get('rps', 0):>10.0f} rec/s {prod.get('note','')}")
                if got:
                    cargs = ["--topic", topic, "--size", str(size), "--records", str(got)]
                    if base[0].endswith("loadgen"):
                        cargs += ["--idle-ms", "5000"]
                    else:
                        cargs += pa + ["--idle-ms", "5000", "--max-seconds", str(MAX_S)]
                    cons = run_phase(server, base[:1] + ["consume"] + base[1:] + cargs, got)
                    results.append(dict(system=name, cls=cls, scenario="consume", size=size, partitions=parts, **cons))
                    log(f"{name:18} consume {size:5} B p{parts:<2}: {cons.get('rps', 0):>10.0f} rec/s {cons.get('note','')}")
            n = E2E_RATE * E2E_SECS
            e2e = run_phase(server, base[:1] + ["e2e"] + base[1:] + ["--topic", f"e{size}{tag.replace('-', '')}", "--size", str(size),
                            "--records", str(n), "--rate", str(E2E_RATE), "--partitions", "1", "--max-seconds", str(MAX_S)]
                            # the peers' generators send each record at once: no linger for librdkafka either
                            + (["--linger-ms", "0"] if base[0].endswith("loadgen") else []), n)
            results.append(dict(system=name, cls=cls, scenario="e2e", size=size, partitions=1, **e2e))
            log(f"{name:18} e2e     {size:5} B @ {E2E_RATE}/s: p50 {e2e.get('lat', {}).get('p50')} us p99 {e2e.get('lat', {}).get('p99')} us {e2e.get('note','')}")

def run_http(cfgs, server, results):
    """HTTP rows (lg_http): batched produce then its SSE read, and the e2e row
    (paced HTTP produce -> SSE receive); single-record produce (a tenth of the
    records)."""
    for name, cls, _, g in cfgs:
        base = g(server.port)
        single = "single" in name
        for size in (100, 1024):
            for parts in PARTS:
                n = max(N[size] // (HTTP_SINGLE_DIV if single else 1), 1)
                topic = f"h{size}p{parts}{'s' if single else 'b'}"
                pa = ["--partitions", str(parts), "--max-seconds", str(MAX_S)]
                prod = run_phase(server, base[:1] + ["produce"] + base[1:] + ["--topic", topic, "--size", str(size), "--records", str(n)] + pa, n)
                results.append(dict(system=name, cls=cls, scenario="produce", size=size, partitions=parts, **prod))
                log(f"{name:18} produce {size:5} B p{parts:<2}: {prod.get('rps', 0):>10.0f} rec/s {prod.get('note','')}")
                got = prod.get("records", 0)
                if got and not single:
                    cons = run_phase(server, base[:1] + ["consume"] + base[1:] + ["--topic", topic, "--size", str(size), "--records", str(got),
                                     "--idle-ms", "5000"] + pa, got)
                    results.append(dict(system=name, cls=cls, scenario="consume", size=size, partitions=parts, **cons))
                    log(f"{name:18} consume {size:5} B p{parts:<2}: {cons.get('rps', 0):>10.0f} rec/s (SSE) {cons.get('note','')}")
            if single:
                continue
            n = E2E_RATE * E2E_SECS
            e2e = run_phase(server, base[:1] + ["e2e"] + base[1:] + ["--topic", f"h{size}e", "--size", str(size), "--records", str(n),
                            "--rate", str(E2E_RATE), "--partitions", "1", "--max-seconds", str(MAX_S)], n)
            results.append(dict(system=name, cls=cls, scenario="e2e", size=size, partitions=1, **e2e))
            log(f"{name:18} e2e     {size:5} B @ {E2E_RATE}/s: p50 {e2e.get('lat', {}).get('p50')} us p99 {e2e.get('lat', {}).get('p99')} us {e2e.get('note','')}")

def fmt(v, d=0):
    return "n/a" if v is None else f"{v:,.{d}f}"

def main():
    date = datetime.datetime.now().strftime("%Y-%m-%d")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    tmp = tempfile.mkdtemp(prefix="cairn-bench.")
    outdir = tmp if SMOKE else os.path.join(ROOT, "bench", "results")
    os.makedirs(outdir, exist_ok=True)
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    machine = f"{os.cpu_count()} cores ({cpu_model}), {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB RAM, Linux {platform.release()}, data dir fs {subprocess.run(['stat', '-f', '-c', '%T', tmp], capture_output=True, text=True).stdout.strip()}"
    log(f"{MODE} run {stamp}; {machine}; temp dir {tmp}")
    t_start = time.time()
    limits = json.loads(subprocess.run([os.path.join(TOOLS, "machlimits"), "--dir", tmp, "--scale", "0.05" if SMOKE else "1"],
                                       capture_output=True, text=True, check=True).stdout)
    log("machine limits:", json.dumps(limits))
    results, versions, failures = [], {}, []
    keys = ["cairn", "cairn-tls", "cairn-authz", "cairn-amqp", "cairn-http"] if SMOKE else ["cairn", "cairn-tls", "cairn-authz", "cairn-amqp", "cairn-http", "redis-always", "redis-everysec", "nats", "rabbitmq"]
    if os.environ.get("BENCH_SYSTEMS"):  # e.g. BENCH_SYSTEMS=cairn-amqp,rabbitmq: a subset, same report
        keys = [k for k in keys if k in os.environ["BENCH_SYSTEMS"].split(",")]
    try:
        for key in keys:
            cfgs = [c for c in CONFIGS if c[2] == key]
            try:
                t = time.time()
                srv = STARTERS[key](tmp)
                log(f"{key} up on 127.0.0.1:{srv.port} pid {srv.pid} after {time.time() - t:.1f} s")
            except Exception as e:  # a peer that does not start is reported, not fatal
                failures.append(f"{key}: {e}"); log(f"SKIP {key}: {e}")
                continue
            try:
                (run_http if key == "cairn-http" else run_system)(cfgs, srv, results)
            finally:
                srv.stop()
    finally:
        if os.environ.get("KEEP_TMP") != "1" and not SMOKE:
            shutil.rmtree(tmp, ignore_errors=True)
    versions = {"redis": subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2] if shutil.which("redis-server") else None,
                "nats": subprocess.run(["nats-server", "--version"], capture_output=True, text=True).stdout.strip() if shutil.which("nats-server") else None,
                "rabbitmq": subprocess.run(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"], capture_output=True, text=True).stdout,
                "librdkafka": subprocess.run(["dpkg-query", "-W", "-f=${Version}", "librdkafka1"], capture_output=True, text=True).stdout}
    cluster = None
    if not SMOKE and (not os.environ.get("BENCH_SYSTEMS") or "cluster" in os.environ["BENCH_SYSTEMS"].split(",")):
        cluster = run_cluster(tmp, failures)
    report = build_report(results, limits, machine, stamp, versions, failures, time.time() - t_start)
    if cluster:
        report["md"] += cluster_md(cluster)
    print(report["md"])
    base = os.path.join(outdir, date if not SMOKE else "smoke")
    open(base + ".md", "w").write(report["md"])
    json.dump({"date": stamp, "machine": machine, "mode": MODE, "limits": limits, "versions": versions,
               "config": {"records": N, "partitions": PARTS, "e2e_rate": E2E_RATE, "e2e_seconds": E2E_SECS,
                          "window": WINDOW, "max_seconds": MAX_S},
               "durability": DURABILITY, "results": results, "ratios": report["ratios"], "failures": failures,
               "cluster": cluster},
              open(base + ".json", "w"), indent=1)
    if not SMOKE:
        plots(results, base)
    bad = [r for r in results if not r.get("ok")]
    log(f"done in {time.time() - t_start:.0f} s; results in {base}.md/.json; {len(bad)} phase(s) not ok")
    if SMOKE:
        if bad or not results:
            sys.exit("bench smoke: failed phases: " + "; ".join(f"{r['system']} {r['scenario']} {r['size']}: {r.get('note')}" for r in bad))
        shutil.rmtree(tmp, ignore_errors=True)

def run_cluster(tmp, failures):
    """Replication cost and failover (bench/cluster.py): a single node and a
    3-node cluster of this build side by side, acks=all; None when it fails."""
    path = os.path.join(tmp, "cluster.json")
    log("cluster: single node vs 3 nodes RF 3, then leader kills (bench/cluster.py)")
    try:
        out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "cluster.py"), "--records", "200000",
                              "--rounds", "3", "--kills", "5", "--json", path],
                             capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-1000:] or out.stdout[-1000:])
        return json.load(open(path))
    except Exception as e:  # reported, not fatal: the peers' rows stand
        failures.append(f"cluster: {e}"); log(f"SKIP cluster: {e}")
        return None


def cluster_md(c):
    """The report's replication section: ratio single/cluster per size (the
    target: RF 3 costs at most 2x) and failover p50/p99."""
    lines = ["", "## Replication (bench/cluster.py)", "",
             f"One partition, acks=all, {c['records']} records per round, median of {c['rounds']} alternating rounds "
             "(librdkafka loadgen); the same build as one node and as a 3-node cluster (RF 3) on this machine. "
             "The three nodes share this machine's cores and its one disk: every record is written and fsynced "
             "three times on the same device, so the ratio here is an upper bound of what replication costs "
             "on separate machines.", "",
             "| size | single node rec/s | 3 nodes RF 3 rec/s | single / cluster |", "| ---: | ---: | ---: | ---: |"]
    for r in c["rows"]:
        lines.append(f"| {r['size']} B | {fmt(r['single'])} | {fmt(r['cluster'])} | {r['ratio']:.2f} |" if r["ratio"]
                     else f"| {r['size']} B | {fmt(r['single'])} | {fmt(r['cluster'])} | n/a |")
    f = c.get("failover")
    if f:
        lines += ["", f"Failover (kill -9 of the partition's leader while a producer sends an acks=all record every "
                      f"10 ms; time to the first record acknowledged after the kill), {f['kills']} kills: "
                      f"p50 {f['p50']:.2f} s, p99 {f['p99']:.2f} s (the connections of a killed process close: "
                      "the survivors stand for election at once)."]
    f = c.get("failover_pause")
    if f:
        lines += ["", f"Failover of a hung leader (SIGSTOP instead of kill -9: nothing closes, the survivors wait "
                      f"out the election timeout of 1-2 s; time to the first acks=all produce a survivor accepts, "
                      f"asked every 10 ms with a raw client), {f['kills']} pauses: "
                      f"p50 {f['p50']:.2f} s, p99 {f['p99']:.2f} s. A librdkafka producer with requests in "
                      "flight to the hung node waits its request.timeout.ms (30 s by default) before it moves "
                      "on, as it would with Kafka's brokers."]
    lines += ["", "The kill rows include librdkafka's own delay: it asks for new metadata about once a second "
                  "while a partition's leader is down."]
    return "\n".join(lines) + "\n"


def limit_for(r, L):
    """Physical limit (MB/s) for a throughput row, and its name."""
    if r["scenario"] == "produce" and r["cls"] == "durable":
        return min(L["loopback_mbps"], L["seqwrite_mbps"]), "min(loopback TCP, seq write+fdatasync)"
    if r["scenario"] == "produce":
        return min(L["loopback_mbps"], L["memcpy_mbps"]), "min(loopback TCP, memcpy)"
    return L["loopback_mbps"], "loopback TCP"

def build_report(results, L, machine, stamp, versions, failures, elapsed):
    md = [f"# Cairn benchmark, {stamp}", "",
          f"Machine: {machine}. Client and server share the same cores (run side by side on loopback).", "",
          f"Run: `make bench` ({MODE}), {elapsed:.0f} s. Versions: redis {versions.get('redis')}, {versions.get('nats')}, "
          f"rabbitmq-server {versions.get('rabbitmq')}, librdkafka {versions.get('librdkafka')}.", "",
          "## Machine limits", "",
          "| loopback TCP MB/s | loopback RTT p50/p99 us | seq write+fdatasync MB/s | fdatasync 4 KiB p50/p99 us | CRC-32C MB/s | memcpy MB/s |",
          "|---:|---:|---:|---:|---:|---:|",
          f"| {fmt(L['loopback_mbps'])} | {L['rtt_us']['p50']:.0f} / {L['rtt_us']['p99']:.0f} | {fmt(L['seqwrite_mbps'])} | "
          f"{L['fsync_us']['p50']:.0f} / {L['fsync_us']['p99']:.0f} | {fmt(L['crc32c_mbps'])} | {fmt(L['memcpy_mbps'])} |", "",
          "## Durability of each row", ""]
    for k, v in DURABILITY.items():
        md.append(f"- **{k}** ({next(c[1] for c in CONFIGS if c[0] == k)}): {v}")
    md += ["", "## Throughput (produce: acked records; consume: from a pre-filled log)", "",
           "| scenario | size B | parts | class | system | records | rec/s | MB/s | ack p50 / p99 ms | broker CPU s / M rec | note |",
           "|---|---:|---:|---|---|---:|---:|---:|---|---:|---|"]
    order = {c[0]: i for i, c in enumerate(CONFIGS)}
    tp = sorted([r for r in results if r["scenario"] != "e2e"],
                key=lambda r: (r["scenario"] != "produce", r["size"], r["partitions"], r["cls"], order[r["system"]]))
    for r in tp:
        lat = r.get("lat") or {}
        latc = f"{lat.get('p50', 0) / 1000:.1f} / {lat.get('p99', 0) / 1000:.1f}" if r["scenario"] == "produce" and lat else ""
        md.append(f"| {r['scenario']} | {r['size']} | {r['partitions']} | {r['cls']} | {r['system']} | {fmt(r.get('records'))} | "
                  f"{fmt(r.get('rps'))} | {fmt(r.get('mbps'), 1)} | {latc} | {fmt(r.get('cpu_s_per_m'), 2)} | "
                  f"{'' if r.get('ok') else 'FAIL '}{r.get('note', '')} |")
    md += ["", f"## End-to-end latency at {E2E_RATE} records/s, 1 partition (send -> receive, log-linear histogram)", "",
           "| size B | class | system | received | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU s / M rec | note |",
           "|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in sorted([r for r in results if r["scenario"] == "e2e"], key=lambda r: (r["size"], r["cls"], order[r["system"]])):
        lat = r.get("lat") or {}
        md.append(f"| {r['size']} | {r['cls']} | {r['system']} | {fmt(r.get('records'))} | {lat.get('p50', 0) / 1000:.2f} | "
                  f"{lat.get('p99', 0) / 1000:.2f} | {lat.get('p999', 0) / 1000:.2f} | {lat.get('max', 0) / 1000:.2f} | "
                  f"{fmt(r.get('cpu_s_per_m'), 2)} | {'' if r.get('ok') else 'FAIL '}{r.get('note', '')} |")
    # Ratios: Cairn vs the best peer of the same durability class, and vs the limit.
    ratios = []
    md += ["", "## Cairn ratios", "",
           "Throughput: Cairn / best peer of the same class (>1 = Cairn faster) and Cairn MB/s / physical limit. "
           "Latency: best peer p99 / Cairn p99 (>1 = Cairn faster) and floor / Cairn p50 (floor = loopback RTT, plus one fdatasync for durable rows).", "",
           "| scenario | size B | parts | class | Cairn | best peer | Cairn / best peer | limit | Cairn / limit |",
           "|---|---:|---:|---|---:|---|---:|---|---:|"]
    for r in results:
        if not r["system"].startswith("cairn") or not r.get("records"):
            continue
        peers = [p for p in results if not p["system"].startswith("cairn") and p["cls"] == r["cls"] and p["scenario"] == r["scenario"]
                 and p["size"] == r["size"] and p["partitions"] == r["partitions"] and p.get("records")]
        row = dict(scenario=r["scenario"], size=r["size"], partitions=r["partitions"], cls=r["cls"], system=r["system"])
        if r["scenario"] == "e2e":
            c99, c50 = r["lat"].get("p99", 0), r["lat"].get("p50", 0)
            best = min(peers, key=lambda p: p["lat"].get("p99", 1e18)) if peers else None
            floor = L["rtt_us"]["p50"] + (L["fsync_us"]["p50"] if r["cls"] == "durable" else 0)
            row.update(cairn=f"p99 {c99 / 1000:.2f} ms", best=f"{best['system']} p99 {best['lat']['p99'] / 1000:.2f} ms" if best else "none",
                       vs_peer=best["lat"]["p99"] / c99 if best and c99 else None, limit=f"floor {floor / 1000:.2f} ms",
                       vs_limit=floor / c50 if c50 else None)
        else:
            best = max(peers, key=lambda p: p.get("rps", 0)) if peers else None
            lim, lname = limit_for(r, L)
            row.update(cairn=f"{r['rps']:,.0f} rec/s", best=f"{best['system']} {best['rps']:,.0f}" if best else "none",
                       vs_peer=r["rps"] / best["rps"] if best and best.get("rps") else None,
                       limit=f"{lim:,.0f} MB/s {lname}", vs_limit=r["mbps"] / lim if lim else None)
        ratios.append(row)
        md.append(f"| {row['scenario']} | {row['size']} | {row['partitions']} | {row['cls']} | {row['cairn']} | {row['best']} | "
                  f"{fmt(row['vs_peer'], 2)} | {row['limit']} | {fmt(row['vs_limit'], 3)} |")
    md += tls_ratios(results, ratios)
    md += amqp_ratios(results, ratios)
    md += http_ratios(results, ratios)
    if failures:
        md += ["", "Not run: " + "; ".join(failures)]
    md += ["", "MB = 10^6 payload bytes. Broker CPU = utime+stime of the server process (all threads) from /proc/PID/stat "
           "across the phase, including idle time in the phase. Clock ticks are 10 ms, so small phases are coarse."]
    return {"md": "\n".join(md) + "\n", "ratios": ratios}

def tls_ratios(results, ratios):
    """Cairn over TLS against Cairn in plaintext, same acks, same run."""
    md = ["", "## Cairn TLS and authorizer vs plaintext", "",
          "Throughput: TLS (or SCRAM + ACL checks) rec/s / plaintext rec/s (<1 = slower); e2e: plaintext p99 / its p99. "
          "Plaintext fetches use sendfile; TLS reads the log and encrypts it (no kernel TLS here). "
          "The authz row logs in with SCRAM and every request is checked against prefixed ACLs.", "",
          "| scenario | size B | parts | row | it | plaintext | it / plaintext |",
          "|---|---:|---:|---|---:|---:|---:|"]
    for r in results:
        if not (r["system"].startswith("cairn tls") or r["system"].startswith("cairn authz")) or not r.get("records"):
            continue
        plain = r["system"].replace("cairn tls ", "cairn ").replace("cairn authz ", "cairn ")
        k = next((p for p in results if p["system"] == plain and p["scenario"] == r["scenario"] and p["size"] == r["size"]
                  and p["partitions"] == r["partitions"] and p.get("records")), None)
        if r["scenario"] == "e2e":
            v = k["lat"]["p99"] / r["lat"]["p99"] if k and k["lat"].get("p99") and r["lat"].get("p99") else None
            me = f"p99 {r['lat'].get('p99', 0) / 1000:.2f} ms"
            them = f"p99 {k['lat'].get('p99', 0) / 1000:.2f} ms" if k else "n/a"
        else:
            v = r["rps"] / k["rps"] if k and k.get("rps") else None
            me, them = f"{r['rps']:,.0f} rec/s", f"{k['rps']:,.0f} rec/s" if k else "n/a"
        ratios.append(dict(scenario=r["scenario"], size=r["size"], partitions=r["partitions"], cls=r["cls"],
                           system=r["system"], peer=plain, vs_peer=v))
        md.append(f"| {r['scenario']} | {r['size']} | {r['partitions']} | {r['system']} | {me} | {them} | {fmt(v, 2)} |")
    return md

def amqp_ratios(results, ratios):
    """Cairn's AMQP rows against RabbitMQ on the same machine (issue 10's target:
    >= 5x the throughput of quorum queues at the same durability, a lower p99)."""
    md = ["", "## Cairn AMQP vs RabbitMQ", "",
          "Throughput: Cairn AMQP rec/s / RabbitMQ rec/s (>1 = Cairn faster). Latency: RabbitMQ p99 / Cairn p99 (>1 = Cairn lower).", "",
          "| scenario | size B | parts | Cairn AMQP row | Cairn | vs rabbitmq quorum | vs rabbitmq classic |",
          "|---|---:|---:|---|---:|---:|---:|"]
    def find(sy, r):
        return next((p for p in results if p["system"] == sy and p["scenario"] == r["scenario"] and p["size"] == r["size"]
                     and p["partitions"] == r["partitions"] and p.get("records")), None)
    for r in results:
        if not r["system"].startswith("cairn amqp") or not r.get("records"):
            continue
        vals = []
        for peer in ("rabbitmq quorum", "rabbitmq classic"):
            p = find(peer, r)
            if r["scenario"] == "e2e":
                v = p["lat"]["p99"] / r["lat"]["p99"] if p and r["lat"].get("p99") else None
            else:
                v = r["rps"] / p["rps"] if p and p.get("rps") else None
            vals.append(v)
            ratios.append(dict(scenario=r["scenario"], size=r["size"], partitions=r["partitions"], cls=r["cls"],
                               system=r["system"], peer=peer, vs_peer=v))
        me = f"p99 {r['lat'].get('p99', 0) / 1000:.2f} ms" if r["scenario"] == "e2e" else f"{r['rps']:,.0f} rec/s"
        md.append(f"| {r['scenario']} | {r['size']} | {r['partitions']} | {r['system']} | {me} | {fmt(vals[0], 2)} | {fmt(vals[1], 2)} |")
    return md

def http_ratios(results, ratios):
    """Cairn's HTTP rows against its own Kafka protocol (acks=all: both are
    answered after fdatasync) on the same run, same size and partitions."""
    md = ["", "## Cairn HTTP vs Kafka protocol (cairn acks=all)", "",
          "Throughput: HTTP rec/s / Kafka rec/s (<1 = HTTP slower); produce p99 of each (HTTP: one request, "
          "Kafka: librdkafka enqueue -> delivery report). Consume: one SSE stream vs the Kafka consumer. "
          f"e2e ({E2E_RATE} rec/s, send -> receive): Kafka p99 / HTTP p99 (>1 = HTTP lower).", "",
          "| scenario | size B | parts | HTTP row | HTTP rec/s | HTTP p99 ms | Kafka rec/s | Kafka p99 ms | HTTP / Kafka |",
          "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if not r["system"].startswith("cairn http") or not r.get("records"):
            continue
        k = next((p for p in results if p["system"] == "cairn acks=all" and p["scenario"] == r["scenario"] and p["size"] == r["size"]
                  and p["partitions"] == r["partitions"] and p.get("records")), None)
        if r["scenario"] == "e2e":
            v = k["lat"]["p99"] / r["lat"]["p99"] if k and k["lat"].get("p99") and r["lat"].get("p99") else None
        else:
            v = r["rps"] / k["rps"] if k and k.get("rps") else None
        ratios.append(dict(scenario=r["scenario"], size=r["size"], partitions=r["partitions"], cls=r["cls"],
                           system=r["system"], peer="cairn acks=all", vs_peer=v))
        p99 = lambda x: f"{x['lat']['p99'] / 1000:.1f}" if x and x["scenario"] != "consume" and (x.get("lat") or {}).get("p99") else ""
        md.append(f"| {r['scenario']}{' (SSE)' if r['scenario'] != 'produce' else ''} | {r['size']} | {r['partitions']} | {r['system']} | "
                  f"{fmt(r.get('rps'))} | {p99(r)} | {fmt(k.get('rps')) if k else 'n/a'} | {p99(k)} | {fmt(v, 3)} |")
    return md

def plots(results, base):
    if not shutil.which("gnuplot"):
        log("gnuplot missing: no plots"); return
    systems = [c[0] for c in CONFIGS]
    for scen in ("produce", "consume"):
        cols = [(s, p) for s in (100, 1024) for p in PARTS]
        dat = base + f"-{scen}.dat"
        with open(dat, "w") as f:
            f.write("system " + " ".join(f"\"{s}B/p{p}\"" for s, p in cols) + "\n")
            for sy in systems:
                vals = []
                for s, p in cols:
                    r = next((r for r in results if r["system"] == sy and r["scenario"] == scen and r["size"] == s and r["partitions"] == p), None)
                    vals.append(f"{r['rps']:.0f}" if r and r.get("rps") else "0")
                f.write(f"\"{sy}\" " + " ".join(vals) + "\n")
        gp = (f"set terminal pngcairo size 1100,500 noenhanced; set output '{base}-{scen}.png'; "
              f"set title '{scen} throughput (records/s, higher is better)'; set style data histograms; "
              "set style histogram clustered gap 1; set style fill solid border -1; set logscale y; set grid ytics; "
              "set xtics rotate by -20; set key outside right; "
              f"plot for [i=2:{len(cols) + 1}] '{dat}' using i:xtic(1) title columnheader(i)")
        subprocess.run(["gnuplot", "-e", gp], check=False)
        os.unlink(dat)
    dat = base + "-e2e.dat"
    with open(dat, "w") as f:
        f.write("system p50_100B p99_100B p999_100B p50_1KiB p99_1KiB p999_1KiB\n")
        for sy in systems:
            vals = []
            for s in (100, 1024):
                r = next((r for r in results if r["system"] == sy and r["scenario"] == "e2e" and r["size"] == s), None)
                for k in ("p50", "p99", "p999"):
                    vals.append(f"{r['lat'][k] / 1000:.3f}" if r and r.get("lat") else "0")
            f.write(f"\"{sy}\" " + " ".join(vals) + "\n")
    gp = (f"set terminal pngcairo size 1100,500 noenhanced; set output '{base}-latency.png'; "
          f"set title 'end-to-end latency at {E2E_RATE} rec/s (ms, lower is better)'; set style data histograms; "
          "set style histogram clustered gap 1; set style fill solid border -1; set logscale y; set grid ytics; "
          "set xtics rotate by -20; set key outside right; "
          f"plot for [i=2:7] '{dat}' using i:xtic(1) title columnheader(i)")
    subprocess.run(["gnuplot", "-e", gp], check=False)
    os.unlink(dat)

if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so every server is still stopped by pid.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
