"""Minimal hand-rolled Kafka wire protocol helpers for the integration tests.

Only what the tests need: request framing (header v1/v2), ApiVersions v0,
Produce v3, Fetch v4, a magic-2 RecordBatch builder/parser and CRC-32C.
Everything is big-endian unless noted (see ../shared/protocol/kafka/NOTES.md).
"""
import socket
import struct
import time

# ---------------------------------------------------------------- CRC-32C

def _make_crc32c_table():
    poly = 0x82F63B78  # reflected Castagnoli polynomial
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "crc32c self-check failed"

# ---------------------------------------------------------------- primitives

def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def nbytes(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n):
    """Signed zigzag varint (works for 32 and 64 bit values)."""
    return uvarint((n << 1) ^ (n >> 63))


def compact_string(s):
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError("short read: need %d at %d of %d" % (n, self.p, len(self.d)))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def nbytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def uvarint(self):
        shift = 0
        out = 0
        while True:
            b = self.take(1)[0]
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def varint(self):
        u = self.uvarint()
        return (u >> 1) ^ -(u & 1)

    def remaining(self):
        return len(self.d) - self.p

# ---------------------------------------------------------------- record batch

def build_record_batch(records, base_timestamp=None, attributes=0):
    """records: list of (key, value, headers[(k, v)], timestamp_ms or None).

    Returns an uncompressed magic-2 batch with a correct CRC-32C.
    """
    if base_timestamp is None:
        ts = [r[3] for r in records if len(r) > 3 and r[3] is not None]
        base_timestamp = min(ts) if ts else int(time.time() * 1000)
    body = bytearray()
    max_ts = base_timestamp
    for idx, rec in enumerate(records):
        key, value = rec[0], rec[1]
        headers = rec[2] if len(rec) > 2 and rec[2] else []
        ts = rec[3] if len(rec) > 3 and rec[3] is not None else base_timestamp
        max_ts = max(max_ts, ts)
        r = bytearray()
        r += i8(0)
        r += varint(ts - base_timestamp)
        r += varint(idx)
        r += varint(-1) if key is None else varint(len(key)) + key
        r += varint(-1) if value is None else varint(len(value)) + value
        r += varint(len(headers))
        for hk, hv in headers:
            hkb = hk.encode()
            r += varint(len(hkb)) + hkb
            r += varint(-1) if hv is None else varint(len(hv)) + hv
        body += varint(len(r)) + r
    after_crc = (i16(attributes) + i32(len(records) - 1) + i64(base_timestamp) + i64(max_ts)
                 + i64(-1) + i16(-1) + i32(-1) + i32(len(records)) + bytes(body))
    crc = crc32c(after_crc)
    after_len = i32(-1) + i8(2) + struct.pack(">I", crc) + after_crc
    return i64(0) + i32(len(after_len)) + after_len


def parse_record_batches(data):
    """Parse back-to-back magic-2 batches (uncompressed records only are decoded).

    Returns a list of dicts: base_offset, attributes, codec, producer_id,
    producer_epoch, base_sequence, crc_ok, records
    (list of dicts offset/timestamp/key/value/headers, or None if compressed).
    A truncated trailing batch is ignored, as clients do.
    """
    out = []
    p = 0
    while p + 61 <= len(data):
        base_offset, batch_len = struct.unpack(">qi", data[p:p + 12])
        end = p + 12 + batch_len
        if end > len(data):
            break
        b = data[p:end]
        magic = b[16]
        if magic != 2:
            raise ValueError("unexpected magic %d" % magic)
        crc = struct.unpack(">I", b[17:21])[0]
        r = Reader(b)
        r.p = 21
        attributes = r.i16()
        last_delta = r.i32()
        base_ts = r.i64()
        max_ts = r.i64()
        producer_id, producer_epoch, base_sequence = r.i64(), r.i16(), r.i32()
        count = r.i32()
        batch = dict(base_offset=base_offset, attributes=attributes, codec=attributes & 7,
                     last_offset_delta=last_delta, max_timestamp=max_ts, count=count,
                     producer_id=producer_id, producer_epoch=producer_epoch,
                     base_sequence=base_sequence,
                     crc_ok=(crc32c(b[21:]) == crc), records=None)
        if attributes & 7 == 0:
            recs = []
            for _ in range(count):
                ln = r.varint()
                start = r.p
                r.i8()
                ts_delta = r.varint()
                off_delta = r.varint()
                kl = r.varint()
                key = None if kl < 0 else r.take(kl)
                vl = r.varint()
                value = None if vl < 0 else r.take(vl)
                hdrs = []
                for _ in range(r.varint()):
                    hkl = r.varint()
                    hk = r.take(hkl).decode()
                    hvl = r.varint()
                    hdrs.append((hk, None if hvl < 0 else r.take(hvl)))
                if r.p - start != ln:
                    raise ValueError("record length mismatch")
                recs.append(dict(offset=base_offset + off_delta, timestamp=base_ts + ts_delta,
                                 key=key, value=value, headers=hdrs))
            batch["records"] = recs
        out.append(batch)
        p = end
    return out

# ---------------------------------------------------------------- connection

class Closed(Exception):
    """The broker closed the connection."""


class Conn:
    def __init__(self, bootstrap, timeout=10.0):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        self.corr = 1000

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except (ConnectionResetError, BrokenPipeError):
                raise Closed("connection reset")
            if not chunk:
                raise Closed("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        (size,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(size)

    def request(self, api_key, version, body, flexible_header=False, client_id="cairn-it"):
        """Send one request, return the response bytes after the correlation id.

        flexible_header: use request header v2 (adds an empty tag buffer).
        The response header is read as v0 (correct for every non-flexible
        response and for all ApiVersions responses).
        """
        self.corr += 1
        corr = self.corr
        hdr = i16(api_key) + i16(version) + i32(corr) + string(client_id)
        if flexible_header:
            hdr += b"\x00"
        msg = hdr + body
        self.send_raw(i32(len(msg)) + msg)
        resp = self.recv_frame()
        got = struct.unpack(">i", resp[:4])[0]
        if got != corr:
            raise AssertionError("correlation id mismatch: sent %d got %d" % (corr, got))
        return resp[4:]

    def is_closed(self, timeout=5.0):
        """True if the peer closes the connection within timeout (no data expected)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return data == b""


def parse_api_versions_v0(body):
    r = Reader(body)
    err = r.i16()
    n = r.i32()
    apis = {}
    for _ in range(n):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    return err, apis


def api_versions(bootstrap, timeout=10.0):
    """ApiVersions v0 over a fresh connection -> (error_code, {key: (min, max)})."""
    with Conn(bootstrap, timeout) as c:
        return parse_api_versions_v0(c.request(18, 0, b""))


def produce_v3_body(topic, partition, records_bytes, acks=-1, timeout_ms=10000):
    return (string(None) + i16(acks) + i32(timeout_ms) + i32(1) + string(topic)
            + i32(1) + i32(partition) + nbytes(records_bytes))


def parse_produce_v3(body):
    """-> {(topic, partition): (error_code, base_offset, log_append_time)}"""
    r = Reader(body)
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            out[(t, p)] = (r.i16(), r.i64(), r.i64())
    r.i32()  # throttle
    return out


def produce_v3(conn, topic, partition, records_bytes, acks=-1):
    resp = parse_produce_v3(conn.request(0, 3, produce_v3_body(topic, partition, records_bytes, acks)))
    return resp[(topic, partition)]


def fetch_v4(conn, topic, partition, offset=0, max_bytes=4 << 20, max_wait_ms=100):
    """Fetch v4 (read_uncommitted) -> dict(error, high_watermark, lso, records bytes)."""
    body = (i32(-1) + i32(max_wait_ms) + i32(1) + i32(max_bytes) + i8(0)
            + i32(1) + string(topic) + i32(1) + i32(partition) + i64(offset) + i32(max_bytes))
    r = Reader(conn.request(1, 4, body))
    r.i32()  # throttle
    res = None
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            err = r.i16()
            hw = r.i64()
            lso = r.i64()
            n_aborted = r.i32()
            for _ in range(max(n_aborted, 0)):
                r.i64(); r.i64()
            recs = r.nbytes()
            if t == topic and p == partition:
                res = dict(error=err, high_watermark=hw, lso=lso, records=recs or b"")
    if res is None:
        raise AssertionError("fetch response lacks %s/%d" % (topic, partition))
    return res


def fetch_all_batches(bootstrap, topic, partition, timeout=20.0):
    """Read every batch of a partition with raw Fetch v4 -> (high_watermark, [batch])."""
    deadline = time.time() + timeout
    batches = []
    offset = 0
    with Conn(bootstrap) as c:
        while True:
            res = fetch_v4(c, topic, partition, offset)
            if res["error"] != 0:
                raise AssertionError("fetch error %d" % res["error"])
            hw = res["high_watermark"]
            got = parse_record_batches(res["records"])
            for b in got:
                if b["base_offset"] + b["last_offset_delta"] >= offset:
                    batches.append(b)
            if got:
                offset = max(offset, got[-1]["base_offset"] + got[-1]["last_offset_delta"] + 1)
            if offset >= hw:
                return hw, batches
            if time.time() > deadline:
                raise AssertionError("fetch_all_batches timed out at offset %d of %d" % (offset, hw))


CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


# ---------------------------------------------------------------- leader epochs (KIP-101, KIP-320)

def offset_for_leader_epoch_v3(conn, topic, partition, leader_epoch, current_leader_epoch=-1):
    """OffsetForLeaderEpoch v3 (consumer: replica_id -1) -> (error, leader_epoch, end_offset)."""
    body = (i32(-1) + i32(1) + string(topic) + i32(1) + i32(partition)
            + i32(current_leader_epoch) + i32(leader_epoch))
    r = Reader(conn.request(23, 3, body))
    r.i32()  # throttle
    out = None
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            err, p, ep, end = r.i16(), r.i32(), r.i32(), r.i64()
            if t == topic and p == partition:
                out = (err, ep, end)
    return out


def fetch_v9(conn, topic, partition, offset=0, current_leader_epoch=-1, max_bytes=1 << 20,
             max_wait_ms=100):
    """Fetch v9 (sessionless, read_uncommitted) -> dict(error, high_watermark, records)."""
    body = (i32(-1) + i32(max_wait_ms) + i32(1) + i32(max_bytes) + i8(0) + i32(0) + i32(-1)
            + i32(1) + string(topic) + i32(1) + i32(partition) + i32(current_leader_epoch)
            + i64(offset) + i64(-1) + i32(max_bytes) + i32(0))
    r = Reader(conn.request(1, 9, body))
    r.i32()  # throttle
    r.i16()  # top-level error
    r.i32()  # session id
    res = None
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p, err, hw = r.i32(), r.i16(), r.i64()
            r.i64()  # lso
            r.i64()  # log start
            for _ in range(max(r.i32(), 0)):
                r.i64(); r.i64()
            recs = r.nbytes()
            if t == topic and p == partition:
                res = dict(error=err, high_watermark=hw, records=recs or b"")
    return res


def list_offsets_v4(conn, topic, partition, timestamp=-1, current_leader_epoch=-1):
    """ListOffsets v4 -> (error, offset, leader_epoch)."""
    body = (i32(-1) + i8(0) + i32(1) + string(topic) + i32(1) + i32(partition)
            + i32(current_leader_epoch) + i64(timestamp))
    r = Reader(conn.request(2, 4, body))
    r.i32()  # throttle
    out = None
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p, err, _ts, off, ep = r.i32(), r.i16(), r.i64(), r.i64(), r.i32()
            if t == topic and p == partition:
                out = (err, off, ep)
    return out


def metadata_v7(conn, topics, auto_create=False):
    """Metadata v7 -> dict(controller, brokers, partitions={(topic, p): dict(error, leader,
    epoch, replicas, isr, offline)})."""
    body = i32(len(topics)) + b"".join(string(t) for t in topics) + i8(1 if auto_create else 0)
    r = Reader(conn.request(3, 7, body))
    r.i32()  # throttle
    brokers = []
    for _ in range(r.i32()):
        nid = r.i32()
        r.string(); r.i32(); r.string()
        brokers.append(nid)
    r.string()  # cluster id
    controller = r.i32()
    parts = {}
    for _ in range(r.i32()):
        r.i16()
        name = r.string()
        r.i8()
        for _ in range(r.i32()):
            err, p, leader, ep = r.i16(), r.i32(), r.i32(), r.i32()
            reps = [r.i32() for _ in range(r.i32())]
            isr = [r.i32() for _ in range(r.i32())]
            off = [r.i32() for _ in range(r.i32())]
            parts[(name, p)] = dict(error=err, leader=leader, epoch=ep, replicas=reps, isr=isr,
                                    offline=off)
    return dict(controller=controller, brokers=brokers, partitions=parts)


# ------------------------------------------------- reassignments (KIP-455)

def compact_array(items, enc):
    if items is None:
        return b"\x00"
    return uvarint(len(items) + 1) + b"".join(enc(x) for x in items)


def read_compact_string(r):
    n = r.uvarint() - 1
    return None if n < 0 else r.take(n).decode()


def read_compact_array(r, dec):
    n = r.uvarint() - 1
    return None if n < 0 else [dec(r) for _ in range(n)]


def alter_partition_reassignments(bootstrap, moves, timeout_ms=30000):
    """AlterPartitionReassignments v0. moves: {topic: {partition: [ids] or
    None}}. Returns (top error, {(topic, partition): (error, message)})."""
    def part(item):
        p, ids = item
        return i32(p) + compact_array(ids, i32) + b"\x00"

    def top(item):
        name, parts = item
        return compact_string(name) + compact_array(sorted(parts.items()), part) + b"\x00"

    body = i32(timeout_ms) + compact_array(sorted(moves.items()), top) + b"\x00"
    with Conn(bootstrap) as conn:
        r = Reader(conn.request(45, 0, body, flexible_header=True))
    assert r.uvarint() == 0  # response header tags
    r.i32()
    err = r.i16()
    read_compact_string(r)
    out = {}

    def rpart(r):
        return (r.i32(), r.i16(), read_compact_string(r), r.uvarint())

    def rtop(r):
        name = read_compact_string(r)
        for p, e, m, _ in read_compact_array(r, rpart):
            out[(name, p)] = (e, m)
        r.uvarint()

    read_compact_array(r, rtop)
    r.uvarint()
    assert r.remaining() == 0
    return err, out


def list_partition_reassignments(bootstrap, topics=None):
    """ListPartitionReassignments v0: {(topic, p): (replicas, adding, removing)}."""
    def top(item):
        name, parts = item
        return compact_string(name) + compact_array(parts, i32) + b"\x00"

    body = i32(10000) + compact_array(None if topics is None else sorted(topics.items()), top) + \
        b"\x00"
    with Conn(bootstrap) as conn:
        r = Reader(conn.request(46, 0, body, flexible_header=True))
    assert r.uvarint() == 0
    r.i32()
    assert r.i16() == 0
    read_compact_string(r)
    out = {}

    def i32s(r):
        return read_compact_array(r, lambda r: r.i32())

    def rpart(r):
        p = r.i32()
        v = (i32s(r), i32s(r), i32s(r))
        r.uvarint()
        return p, v

    def rtop(r):
        name = read_compact_string(r)
        for p, v in read_compact_array(r, rpart):
            out[(name, p)] = v
        r.uvarint()

    read_compact_array(r, rtop)
    r.uvarint()
    assert r.remaining() == 0
    return out
