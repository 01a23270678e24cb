"""Nemesis fault kinds and the seeded schedule.

A schedule is drawn from the seed alone: for each window a kind, its length,
the heal period after it, and every random choice the kind needs (which node
when the target is "random", cut style, one-way direction, delays). Targets
named "leader" are resolved at run time (the leader of a partition chosen by
the seed, as the cluster reports it then), so a replay hits the same kinds at
the same times but may pick another node if leadership went elsewhere.

Partitions are message-level (netproxy.py): style "drop" black-holes the
pair's frames and keeps the connection; style "reset" closes the pair's
connections and refuses new ones until heal.

Targets named "coord" are the transaction coordinator: the leader of
`__transaction_state-0`, as FindCoordinator (key type 1) names it at run
time (its leadership follows `__consumer_offsets-0`, so it is the group
coordinator too). The coordinator kinds are not in KINDS, so the plain
mode's seeded schedules stay what they were; the transactional mode draws
from TXN_KINDS, where they weigh double.
"""
import random

KINDS = [
    "kill-leader", "kill-random", "kill-majority", "kill-all",
    "pause-leader", "pause-random",
    "part-leader", "part-halves", "part-bridge", "part-ring", "oneway-leader",
    "slow-net", "slow-leader", "conn-reset", "rolling-restart",
    "combo",
]

COORD_KINDS = ["kill-coord", "pause-coord", "part-coord"]

# Replica moves under load (AlterPartitionReassignments): a partition moves
# to the first rf nodes of a seeded order (the workload's topic needs rf
# below the node count to leave the partition's nodes: --rf), alone or
# with its leader killed or paused 0.5 s into the move. Not in KINDS, so
# the plain mode's seeded schedules stay what they were.
MOVE_KINDS = ["move", "move-kill-leader", "move-pause-leader"]

# Simulated power loss (the fault-injection build, `make BUILD=build-fault
# FAULT=1 build-fault/cairn`: every file cut back to what was fsynced, or
# garbled beyond it; the cluster's mode comes from the seed): one node, the
# leader, a minority, every node at once. Without the fault build a node
# gets kill -9 instead (and the log says so). Not in KINDS either.
POWER_KINDS = ["power-random", "power-leader", "power-minority", "power-all"]

# Wall-clock skew (libfaketime, cluster.py; without it the fault is only
# logged): one node's clock, the leader's, or every node's, each its own
# offset, stepped by seconds to a day either way, then back at heal. The
# monotonic clock is left alone (timeouts and elections use it; NTP steps
# only the wall clock). What uses the wall clock: record and segment
# timestamps, time-based retention and roll, the log's timestamps. Not in
# KINDS either.
CLOCK_KINDS = ["clock-random", "clock-leader", "clock-all"]
CLOCK_OFFSETS = [-86400, -3600, -300, -30, -2, 2, 30, 300, 3600, 86400]

# Membership changes under load: a node leaves the cluster (DELETE
# /cluster/nodes/N through another node: its replicas move to the others,
# then it is removed), is stopped, loses its data directory, and joins again
# empty with cluster.join (registered anew, the logs of every node take it
# back in). The workload's topic needs rf below the node count (--rf), as
# for moves. "-kill": 0.5 s into the leave another node is killed (kill -9)
# and restarted 2 s later. The fault takes as long as that takes (it
# blocks the schedule; 90 s at most for each of leaving and joining). Not
# in KINDS either.
MEMBER_KINDS = ["leave-rejoin", "leave-rejoin-kill"]

ALL_KINDS = KINDS + COORD_KINDS + MOVE_KINDS + POWER_KINDS + CLOCK_KINDS + MEMBER_KINDS

TXN_KINDS = KINDS + COORD_KINDS + COORD_KINDS

COMBO_PARTS = ["kill-random", "pause-random", "part-halves", "oneway-leader", "slow-net",
               "part-leader"]


def draw(rng, kind, n):
    """Every seeded parameter of one fault."""
    ids = list(range(1, n + 1))
    p = {"kind": kind, "part_index": rng.randrange(1 << 16)}
    if kind in ("kill-random", "pause-random", "power-random", "clock-random"):
        p["node"] = rng.choice(ids)
    if kind in ("clock-random", "clock-leader"):
        p["offset"] = rng.choice(CLOCK_OFFSETS)
    elif kind == "clock-all":
        p["offsets"] = [rng.choice(CLOCK_OFFSETS) for _ in ids]
    elif kind == "power-minority":
        p["nodes"] = sorted(rng.sample(ids, (n - 1) // 2))
    elif kind == "kill-majority":
        p["nodes"] = sorted(rng.sample(ids, n // 2 + 1))
    elif kind in ("part-leader", "part-halves", "part-bridge", "part-ring", "oneway-leader",
                  "part-coord"):
        p["style"] = rng.choice(["drop", "drop", "reset"])
        if kind == "part-halves":
            sh = ids[:]
            rng.shuffle(sh)
            k = rng.randint(1, n // 2)
            p["minority"] = sorted(sh[:k])
        elif kind == "part-bridge":
            sh = ids[:]
            rng.shuffle(sh)
            p["bridge"] = sh[0]
            rest = sh[1:]
            h = len(rest) // 2
            p["a"], p["b"] = sorted(rest[:h]), sorted(rest[h:])
        elif kind == "part-ring":
            sh = ids[:]
            rng.shuffle(sh)
            p["ring"] = sh
        elif kind == "oneway-leader":
            p["direction"] = rng.choice(["out", "in"])
            p["style"] = "drop"
    elif kind == "slow-net":
        p["ms"] = rng.choice([20, 50, 100, 200, 400])
        p["jitter"] = rng.choice([0, 10, 50])
    elif kind == "slow-leader":
        p["ms"] = rng.choice([100, 300, 800, 1500])
        p["jitter"] = rng.choice([0, 50])
    elif kind == "conn-reset":
        p["every_ms"] = rng.choice([200, 500, 1000])
    elif kind in MOVE_KINDS:
        p["order"] = rng.sample(ids, n)
    elif kind in MEMBER_KINDS:
        p["node"] = rng.choice(ids)
        if kind == "leave-rejoin-kill":
            p["victim"] = rng.choice([x for x in ids if x != p["node"]])
    elif kind == "rolling-restart":
        p["order"] = rng.sample(ids, n)
        p["how"] = rng.choice(["kill9", "term"])
    elif kind == "combo":
        a, b = rng.sample(COMBO_PARTS, 2)
        p["parts"] = [draw(rng, a, n), draw(rng, b, n)]
    return p


def schedule(seed, n, duration, kinds=None, fault_s=(2.0, 6.0), heal_s=(1.0, 4.0),
             warmup=2.0):
    """[(start, end_of_fault, end_of_heal, params)] covering `duration` seconds."""
    rng = random.Random(seed * 7919 + n)
    kinds = kinds or KINDS
    out = []
    t = warmup
    while t < duration:
        kind = rng.choice(kinds)
        f = round(rng.uniform(*fault_s), 2)
        h = round(rng.uniform(*heal_s), 2)
        if kind == "rolling-restart":
            f = max(f, 1.5 * n)
        out.append((round(t, 2), round(t + f, 2), round(t + f + h, 2), draw(rng, kind, n)))
        t += f + h
    return out


def describe(p):
    k = p["kind"]
    extra = {x: y for x, y in p.items() if x not in ("kind", "part_index", "parts")}
    if k == "combo":
        return "combo[%s + %s]" % (describe(p["parts"][0]), describe(p["parts"][1]))
    return "%s%s" % (k, (" " + " ".join("%s=%s" % kv for kv in sorted(extra.items())))
                     if extra else "")


class Nemesis:
    """Applies and heals faults on a Cluster. `leader_of(part_index)` returns
    the current leader node id of a partition (or None); `coordinator()` the
    node id of the transaction coordinator (or None)."""

    def __init__(self, cluster, leader_of, log, coordinator=None, mover=None, rejoiner=None):
        self.cl = cluster
        self.leader_of = leader_of
        self.coordinator = coordinator
        self.mover = mover          # mover(part_index, order): starts a move, logs it
        self.rejoiner = rejoiner    # rejoiner(node, victim or None): MEMBER_KINDS, blocking
        self.log = log
        self.resets = None   # (every_s, next_t) while conn-reset runs

    def _coord(self, p):
        x = self.coordinator() if self.coordinator else None
        if x is None:
            x = sorted(self.cl.ids())[p["part_index"] % self.cl.n]
            self.log("  no transaction coordinator known; target node %d instead" % x)
        return x

    def _leader(self, p):
        lead = self.leader_of(p["part_index"])
        if lead is None:
            lead = sorted(self.cl.ids())[p["part_index"] % self.cl.n]
            self.log("  no leader known; target node %d instead" % lead)
        return lead

    def _isolate(self, groups, style):
        """Cut every pair of nodes that are in different groups."""
        ids = self.cl.ids()
        where = {}
        for gi, g in enumerate(groups):
            for x in g:
                where[x] = gi
        for a in ids:
            for b in ids:
                if a < b and where.get(a) != where.get(b):
                    self._cut(a, b, style)

    def _cut(self, a, b, style, oneway=False):
        px = self.cl.proxy
        px.cut(a, b, oneway=oneway)
        if style == "reset":
            px.refuse(a, b, True)
            px.reset(a, b)

    def apply(self, p, end_t, now):
        k = p["kind"]
        cl = self.cl
        ids = cl.ids()
        if k == "kill-leader":
            x = self._leader(p)
            self.log("  kill -9 node %d (leader)" % x)
            cl.node(x).kill9()
        elif k == "kill-random":
            self.log("  kill -9 node %d" % p["node"])
            cl.node(p["node"]).kill9()
        elif k == "kill-majority":
            self.log("  kill -9 nodes %s" % p["nodes"])
            for x in p["nodes"]:
                cl.node(x).kill9()
        elif k == "kill-all":
            self.log("  kill -9 every node")
            for x in ids:
                cl.node(x).kill9()
        elif k == "pause-leader":
            x = self._leader(p)
            self.log("  SIGSTOP node %d (leader)" % x)
            cl.node(x).pause()
        elif k == "kill-coord":
            x = self._coord(p)
            self.log("  kill -9 node %d (transaction coordinator)" % x)
            cl.node(x).kill9()
        elif k == "pause-coord":
            x = self._coord(p)
            self.log("  SIGSTOP node %d (transaction coordinator)" % x)
            cl.node(x).pause()
        elif k == "part-coord":
            x = self._coord(p)
            self.log("  isolate node %d (transaction coordinator), style %s" % (x, p["style"]))
            self._isolate([[x], [y for y in ids if y != x]], p["style"])
        elif k == "pause-random":
            self.log("  SIGSTOP node %d" % p["node"])
            cl.node(p["node"]).pause()
        elif k == "part-leader":
            x = self._leader(p)
            self.log("  isolate node %d (leader), style %s" % (x, p["style"]))
            self._isolate([[x], [y for y in ids if y != x]], p["style"])
        elif k == "part-halves":
            mino = p["minority"]
            self.log("  split %s | %s, style %s" % (mino, [y for y in ids if y not in mino],
                                                    p["style"]))
            self._isolate([mino, [y for y in ids if y not in mino]], p["style"])
        elif k == "part-bridge":
            self.log("  bridge: %s | %s, node %d sees both, style %s"
                     % (p["a"], p["b"], p["bridge"], p["style"]))
            for a in p["a"]:
                for b in p["b"]:
                    self._cut(min(a, b), max(a, b), p["style"])
        elif k == "part-ring":
            r = p["ring"]
            n = len(r)
            nb = {(r[i], r[(i + 1) % n]) for i in range(n)}
            nb |= {(b, a) for a, b in nb}
            cuts = [(a, b) for a in ids for b in ids if a < b and (a, b) not in nb]
            if not cuts:  # 3 nodes: every pair is adjacent in a ring; cut one link
                cuts = [tuple(sorted((r[0], r[1])))]
            self.log("  ring %s: cut %s, style %s" % (r, cuts, p["style"]))
            for a, b in cuts:
                self._cut(a, b, p["style"])
        elif k == "oneway-leader":
            x = self._leader(p)
            self.log("  one-way: frames %s node %d dropped" %
                     ("from" if p["direction"] == "out" else "to", x))
            for y in ids:
                if y != x:
                    if p["direction"] == "out":
                        cl.proxy.cut(x, y, oneway=True)
                    else:
                        cl.proxy.cut(y, x, oneway=True)
        elif k == "slow-net":
            self.log("  every link delayed %d ms (+%d jitter)" % (p["ms"], p["jitter"]))
            for a in ids:
                for b in ids:
                    if a != b:
                        cl.proxy.set_delay(a, b, p["ms"], p["jitter"], both=False)
        elif k == "slow-leader":
            x = self._leader(p)
            self.log("  links of node %d (leader) delayed %d ms" % (x, p["ms"]))
            for y in ids:
                if y != x:
                    cl.proxy.set_delay(x, y, p["ms"], p["jitter"])
        elif k == "conn-reset":
            self.log("  every cluster connection reset every %d ms" % p["every_ms"])
            self.resets = [p["every_ms"] / 1000.0, now]
        elif k in POWER_KINDS:
            if k == "power-random":
                xs = [p["node"]]
            elif k == "power-leader":
                xs = [self._leader(p)]
            elif k == "power-minority":
                xs = p["nodes"]
            else:
                xs = ids
            self.log("  power cut of node(s) %s (fault mode %d)" % (xs, cl.power_mode))
            for x in xs:
                cl.node(x).power_cut()
        elif k in CLOCK_KINDS:
            if k == "clock-all":
                steps = list(zip(ids, p["offsets"]))
            else:
                steps = [(p["node"] if k == "clock-random" else self._leader(p), p["offset"])]
            if not cl.faketime:
                self.log("  no libfaketime: clocks left alone")
                return None
            self.log("  wall clock stepped: %s" % ", ".join(
                "node %d %+ds" % (x, o) for x, o in steps))
            for x, o in steps:
                cl.node(x).set_clock(o)
        elif k in MOVE_KINDS:
            import time
            x = self._leader(p)
            if not self.mover:
                self.log("  no mover: nothing moved")
                return None
            self.mover(p["part_index"], p["order"])
            if k != "move":
                time.sleep(0.5)
                self.log("  %s node %d (the partition's leader when the move began)"
                         % ("kill -9" if k == "move-kill-leader" else "SIGSTOP", x))
                if k == "move-kill-leader":
                    cl.node(x).kill9()
                else:
                    cl.node(x).pause()
        elif k in MEMBER_KINDS:
            if not self.rejoiner:
                self.log("  no rejoiner: nothing done")
                return None
            self.rejoiner(p["node"], p.get("victim"))
        elif k == "rolling-restart":
            self.log("  rolling restart %s (%s)" % (p["order"], p["how"]))
            return self._rolling(p, end_t)
        elif k == "combo":
            for sub in p["parts"]:
                self.log("  combo part: %s" % describe(sub))
                self.apply(sub, end_t, now)
        return None

    def _rolling(self, p, end_t):
        import time
        step = max(0.5, (end_t - time.time()) / len(p["order"]))
        for x in p["order"]:
            t0 = time.time()
            nd = self.cl.node(x)
            if p["how"] == "kill9":
                nd.kill9()
            else:
                st = nd.stop()
                if st not in (0,):
                    self.log("  node %d exit status %s after SIGTERM" % (x, st))
                    self.cl.unclean.append((x, st))
            time.sleep(min(0.3, step / 3))
            nd.start()
            left = step - (time.time() - t0)
            if left > 0:
                time.sleep(left)

    def tick(self, now):
        if self.resets and now >= self.resets[1]:
            ids = self.cl.ids()
            for a in ids:
                for b in ids:
                    if a < b:
                        self.cl.proxy.reset(a, b)
            self.resets[1] = now + self.resets[0]

    def heal(self):
        self.resets = None
        self.cl.heal_all()
