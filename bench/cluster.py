#!/usr/bin/python3
"""Replication cost and failover time (issue 12; cluster plan step 10 folds
this into `make bench`).

    /usr/bin/python3 bench/cluster.py [--records N] [--rounds R] [--kills K] [--json PATH]

Starts one single node and one 3-node cluster of build/cairn on loopback
(temporary data directories), creates a 1-partition topic on each (RF 1 and
RF 3), and runs the librdkafka load generator (build/tools/loadgen, acks=all)
against both in alternating rounds, for 100 B and 1 KiB records. Prints
records/s per round, the medians, and the ratio single/cluster (the issue's
target: RF 3 costs at most 2x). Then kills the partition's leader K times
(restarting it each time) while a producer sends one acks=all record every
10 ms, and reports failover time = kill -> first acknowledged record after
it, p50/p99 (the target: under 2 s with default timeouts); then SIGSTOP
instead of kill -9 (a hung or vanished machine: no connection closes, so the
survivors wait out the election timeout instead of standing at once),
measured with a raw client (pause_failover_times says why). --json writes
the figures for `make bench` (bench/run.py full adds them to its report).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CAIRN = os.environ.get("CAIRN_BIN", os.path.join(REPO, "build", "cairn"))
LOADGEN = os.path.join(REPO, "build", "tools", "loadgen")


sys.path.insert(0, os.path.join(REPO, "tests", "integration", "py"))
from cairn_broker import free_port  # noqa: E402  (below the ephemeral range: nodes restart)


class Node:
    def __init__(self, root, name, extra):
        self.dir = os.path.join(root, name)
        self.port = free_port()
        self.extra = extra
        self.proc = None
        self.log = os.path.join(root, name + ".log")

    def start(self):
        argv = [CAIRN, "--listen", "127.0.0.1:%d" % self.port, "--amqp-listen", "off",
                "--http-listen", "off", "--data-dir", self.dir] + self.extra
        self.proc = subprocess.Popen(argv, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            if "kafka listening on" in open(self.log, errors="replace").read():
                return
            time.sleep(0.05)
        raise SystemExit("node %s did not start (%s)" % (self.dir, self.log))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port


def create(bootstrap, topic, rf):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    for _ in range(50):
        try:
            a.create_topics([NewTopic(topic, 1, rf)])[topic].result(15)
            return
        except Exception as e:  # controller not elected yet
            last = e
            time.sleep(0.2)
    raise SystemExit("create %s: %s" % (topic, last))


def leader_of(bootstrap, topic):
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    p = md.topics[topic].partitions[0]
    return p.leader


def produce_rate(bootstrap, topic, records, size):
    out = subprocess.run([LOADGEN, "produce", "--bootstrap", bootstrap, "--topic", topic,
                          "--records", str(records), "--size", str(size), "--acks", "all",
                          "--json", "--quiet"], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit("loadgen failed: %s" % out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["records_per_sec"]


def failover_times(nodes, bootstrap, topic, kills):
    from confluent_kafka import Producer
    times = []
    for k in range(kills):
        lid = leader_of(bootstrap, topic)
        victim = nodes[lid - 1]
        acked = []
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                      "linger.ms": 0, "message.timeout.ms": 30000})
        t_kill = None
        deadline = time.time() + 40
        i = 0
        while time.time() < deadline:
            p.produce(topic, b"f%d-%d" % (k, i),
                      on_delivery=lambda err, m: acked.append(time.time()) if not err else None)
            i += 1
            p.poll(0.01)
            if t_kill is None and len(acked) >= 20:
                t_kill = time.time()
                victim.kill()
            if t_kill is not None and any(t > t_kill + 0.001 for t in acked):
                break
        p.flush(30)
        after = [t for t in acked if t_kill and t > t_kill]
        times.append((min(after) - t_kill) if after else float("inf"))
        victim.start()
        time.sleep(2)
    return times


def pause_failover_times(nodes, bootstrap, topic, pauses):
    """SIGSTOP of the partition's leader (a hung or vanished machine: no
    connection closes, so the survivors wait out the election timeout) ->
    the first acks=all produce a survivor accepts, asked of the survivors
    every 10 ms with a raw Kafka client (kwire). A librdkafka producer would
    add its request.timeout.ms (30 s by default): with requests in flight to
    the hung node, an idempotent producer waits for them before it moves to
    the new leader (Kafka's brokers cost it the same)."""
    import kwire
    times = []
    for k in range(pauses):
        lid = leader_of(bootstrap, topic)
        victim = nodes[lid - 1]
        live = {i + 1: n for i, n in enumerate(nodes) if n is not victim}
        victim.proc.send_signal(signal.SIGSTOP)
        t0 = time.time()
        took = float("inf")
        batch = kwire.build_record_batch([(None, b"p%d" % k, [], None)])
        while time.time() < t0 + 30 and took == float("inf"):
            for n in live.values():
                try:
                    with kwire.Conn(n.bootstrap, timeout=2) as c:
                        md = kwire.metadata_v7(c, [topic])["partitions"].get((topic, 0))
                    if md and md["leader"] in live:
                        with kwire.Conn(live[md["leader"]].bootstrap, timeout=2) as c:
                            if kwire.produce_v3(c, topic, 0, batch)[0] == 0:
                                took = time.time() - t0
                                break
                except Exception:
                    pass
            time.sleep(0.01)
        times.append(took)
        victim.proc.send_signal(signal.SIGCONT)
        time.sleep(3)
    return times


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--json", default=None, help="write the figures there")
    args = ap.parse_args()
    out = {"records": args.records, "rounds": args.rounds, "rows": [], "failover": None}
    root = tempfile.mkdtemp(prefix="cairn-bench-cluster-")
    single = Node(root, "single", [])
    cports = [free_port() for _ in range(3)]
    peers = ",".join("%d@127.0.0.1:%d" % (i + 1, cports[i]) for i in range(3))
    nodes = [Node(root, "n%d" % (i + 1), ["--node-id", str(i + 1), "--cluster-listen",
                                            "127.0.0.1:%d" % cports[i], "--peers", peers])
             for i in range(3)]
    try:
        single.start()
        for n in nodes:
            n.start()
        cboot = ",".join(n.bootstrap for n in nodes)
        create(single.bootstrap, "b", 1)
        create(cboot, "b", 3)
        print("| size | single node acks=all rec/s | 3 nodes RF 3 acks=all rec/s | ratio |")
        print("| ---: | ---: | ---: | ---: |")
        for size in (100, 1024):
            s_rates, c_rates = [], []
            for _ in range(args.rounds):
                s_rates.append(produce_rate(single.bootstrap, "b", args.records, size))
                c_rates.append(produce_rate(cboot, "b", args.records, size))
            s, c = statistics.median(s_rates), statistics.median(c_rates)
            print("| %d B | %.0f (%s) | %.0f (%s) | %.2f |" % (
                size, s, ", ".join("%.0f" % x for x in s_rates), c,
                ", ".join("%.0f" % x for x in c_rates), s / c if c else float("inf")), flush=True)
            out["rows"].append({"size": size, "single": s, "cluster": c, "single_rounds": s_rates,
                                "cluster_rounds": c_rates, "ratio": s / c if c else None})
        if args.kills:
            t = failover_times(nodes, cboot, "b", args.kills)
            print("\nfailover (kill -9 of the leader -> first acked record), %d kills: "
                  "p50 %.2f s, p99 %.2f s, all %s" % (len(t), pct(t, 0.5), pct(t, 0.99),
                                                       ", ".join("%.2f" % x for x in t)))
            out["failover"] = {"kills": len(t), "p50": pct(t, 0.5), "p99": pct(t, 0.99), "all": t}
            t = pause_failover_times(nodes, cboot, "b", args.kills)
            print("failover (SIGSTOP of the leader, a hung machine -> first acked produce), %d "
                  "pauses: p50 %.2f s, p99 %.2f s, all %s" % (len(t), pct(t, 0.5), pct(t, 0.99),
                                                            ", ".join("%.2f" % x for x in t)))
            out["failover_pause"] = {"kills": len(t), "p50": pct(t, 0.5), "p99": pct(t, 0.99),
                                     "all": t}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        for n in nodes + [single]:
            try:
                n.stop()
            except Exception:
                pass
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
