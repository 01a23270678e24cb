"""Per-pair TCP proxies between Cairn cluster nodes, so that a nemesis can cut,
heal, delay or make one-way partitions per node pair without root.

One listener per ordered pair (i, j): node i's ``--peers`` entry for node j
names the listener of (i, j), which forwards to node j's real cluster port.
(The lower node id dials, so in practice the listeners (i, j) with i < j carry
the traffic; each connection carries both directions.)

The proxy understands the cluster framing (u32 length, u8 type, body;
src/cluster/cluster.c) and acts on whole frames, so the stream it delivers is
always well formed. Policy is per direction (from node a to node b):

* ``drop``: frames a -> b are discarded (a message-level partition: the
  connection stays up, what is sent during the cut is lost, as with a
  black-holing switch; Raft must tolerate message loss);
* ``delay_ms`` (+ ``jitter_ms``): frames a -> b are delivered that much later,
  in order (a slow link).

``reset(a, b)`` closes every connection of the pair at once (both nodes see
the connection drop); ``refuse(a, b, True)`` makes new connections of the pair
close at once (with ``drop`` on both directions this is a partition that
looks like "connection refused" instead of a black hole). A connection whose
HELLO frame was dropped can never become ready, so heal() closes those; the
dialer reconnects.

Everything runs on one asyncio loop in a daemon thread; the control methods
are thread-safe.
"""
import asyncio
import random
import struct
import threading
import time

HELLO = 1


class _Conn:
    def __init__(self, proxy, a, b):
        self.proxy = proxy
        self.a, self.b = a, b          # a dialled b through this proxy
        self.writers = []
        self.hello_lost = False
        self.closed = False

    def close(self):
        if self.closed:
            return
        self.closed = True
        for w in self.writers:
            try:
                w.transport.abort()
            except Exception:
                pass


class NetProxy:
    def __init__(self, host="127.0.0.1", seed=0):
        self.host = host
        self.rng = random.Random(seed)
        self.drop = set()            # (a, b): frames a -> b are dropped
        self.delay = {}              # (a, b) -> (ms, jitter ms)
        self.refused = set()         # frozenset({a, b})
        self.conns = set()
        self.stats = {"frames": 0, "dropped": 0, "delayed": 0, "resets": 0, "refused": 0}
        self.links = {}              # (i, j) -> listen port
        self._servers = []
        self.loop = asyncio.new_event_loop()
        self._t = threading.Thread(target=self._run, name="netproxy", daemon=True)
        self._t.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # ------------------------------------------------------------ setup
    def add_link(self, i, j, upstream_port):
        """A listener for node i's connections to node j -> its port."""
        async def start():
            srv = await asyncio.start_server(
                lambda r, w: self._serve(i, j, upstream_port, r, w), self.host, 0)
            self._servers.append(srv)
            return srv.sockets[0].getsockname()[1]
        port = self._call(start())
        self.links[(i, j)] = port
        return port

    def close(self):
        async def stop():
            for c in list(self.conns):
                c.close()
            for s in self._servers:
                s.close()
        try:
            self._call(stop())
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._t.join(5)

    # ------------------------------------------------------------ control
    def cut(self, a, b, oneway=False):
        """Drop frames a -> b (and b -> a unless oneway)."""
        self.drop.add((a, b))
        if not oneway:
            self.drop.add((b, a))

    def set_delay(self, a, b, ms, jitter_ms=0, both=True):
        self.delay[(a, b)] = (ms, jitter_ms)
        if both:
            self.delay[(b, a)] = (ms, jitter_ms)

    def refuse(self, a, b, on=True):
        k = frozenset((a, b))
        if on:
            self.refused.add(k)
        else:
            self.refused.discard(k)

    def reset(self, a, b):
        """Close every connection between a and b now."""
        def do():
            for c in list(self.conns):
                if {c.a, c.b} == {a, b}:
                    self.stats["resets"] += 1
                    c.close()
        self.loop.call_soon_threadsafe(do)

    def heal(self):
        """Everything back to normal; connections that lost a HELLO are closed."""
        self.drop.clear()
        self.delay.clear()
        self.refused.clear()

        def do():
            for c in list(self.conns):
                if c.hello_lost:
                    self.stats["resets"] += 1
                    c.close()
        self.loop.call_soon_threadsafe(do)

    def describe(self):
        return {"drop": sorted(self.drop), "delay": dict(self.delay),
                "refused": sorted(tuple(sorted(k)) for k in self.refused)}

    # ------------------------------------------------------------ data path
    async def _serve(self, a, b, upstream_port, creader, cwriter):
        if frozenset((a, b)) in self.refused:
            self.stats["refused"] += 1
            cwriter.transport.abort()
            return
        try:
            ureader, uwriter = await asyncio.open_connection(self.host, upstream_port)
        except OSError:
            cwriter.transport.abort()
            return
        c = _Conn(self, a, b)
        c.writers = [cwriter, uwriter]
        self.conns.add(c)
        try:
            await asyncio.gather(self._pump(c, a, b, creader, uwriter),
                                 self._pump(c, b, a, ureader, cwriter))
        finally:
            c.close()
            self.conns.discard(c)

    async def _pump(self, c, src, dst, reader, writer):
        """Frames src -> dst: read, apply policy, write in order."""
        q = asyncio.Queue()
        wtask = asyncio.ensure_future(self._writer(c, q, writer))
        buf = bytearray()
        last_due = 0.0
        try:
            while not c.closed:
                data = await reader.read(1 << 16)
                if not data:
                    break
                buf += data
                frames = []
                at = 0
                while len(buf) - at >= 5:
                    n = struct.unpack_from(">I", buf, at)[0]
                    if len(buf) - at < 4 + n:
                        break
                    frames.append(bytes(buf[at:at + 4 + n]))
                    at += 4 + n
                del buf[:at]
                now = time.monotonic()
                for f in frames:
                    self.stats["frames"] += 1
                    if (src, dst) in self.drop:
                        self.stats["dropped"] += 1
                        if f[4] == HELLO:
                            c.hello_lost = True
                        continue
                    d = self.delay.get((src, dst))
                    due = now
                    if d:
                        self.stats["delayed"] += 1
                        due = now + (d[0] + self.rng.uniform(0, d[1])) / 1000.0
                    due = max(due, last_due)
                    last_due = due
                    q.put_nowait((due, f))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            q.put_nowait(None)
            try:
                await wtask
            except Exception:
                pass
            c.close()

    async def _writer(self, c, q, writer):
        try:
            while True:
                item = await q.get()
                if item is None or c.closed:
                    return
                due, f = item
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if c.closed:
                    return
                writer.write(f)
                if writer.transport.get_write_buffer_size() > (1 << 20):
                    await writer.drain()
        except (OSError, ConnectionError):
            c.close()
