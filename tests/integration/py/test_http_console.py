"""The web console (GET /console, src/http/console, embedded by
tools/embed_console.py) served by a real broker and driven in a real
headless Chromium (Debian's chromium + chromium-driver, through Debian's
python3-selenium). Objects are made with real clients (confluent-kafka,
http.client) and must show up on the page; the page's actions (create a
topic, publish a test message, reset a group's offsets, delete a topic) are
checked through Kafka afterwards.

Screenshots go to $CAIRN_SCREENSHOT_DIR when set (docs/ holds the README's
one: CAIRN_SCREENSHOT_DIR=docs), else to the test's tmp dir. The browser
tests skip only when Chromium cannot be started here (no selenium, no
chromium or chromedriver binary, or the browser fails to launch within 30 s),
and fail instead under CI=true (scripts/install-deps.sh installs them). The
module takes about 20 s (each test is limited to 60 s).
"""
import http.client
import json
import os
import shutil
import signal
import threading
import time

import pytest
from confluent_kafka import TopicPartition

import ckhelp
from cairn_broker import unique_topic
from httphelp import get, post

pytestmark = pytest.mark.cairn_timeout(60)

# $CAIRN_CHROMIUM / $CAIRN_CHROMEDRIVER name other binaries.
CHROMIUM = os.environ.get("CAIRN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (os.environ.get("CAIRN_CHROMEDRIVER") or shutil.which("chromedriver") or
                "/usr/bin/chromedriver")
WAIT = 15
LAUNCH_TIMEOUT = 30


# ---------------------------------------------------------------- browser

@pytest.fixture(scope="module")
def driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        if os.environ.get("CI") == "true":
            pytest.fail("selenium missing: scripts/install-deps.sh installs python3-selenium")
        pytest.skip("selenium is not installed (python3-selenium): %s" % e)
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not os.access(exe, os.X_OK):
            if os.environ.get("CI") == "true":
                pytest.fail("%s not found: scripts/install-deps.sh installs it" % exe)
            pytest.skip("%s not found (Debian packages chromium, chromium-driver)" % exe)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--no-first-run", "--disable-extensions",
              "--proxy-server=direct://", "--proxy-bypass-list=*"):
        opts.add_argument(a)
    # The launch is bounded (the tests' own alarm is not armed yet for a
    # module fixture). Under CI, where scripts/install-deps.sh installed the
    # browser, a browser that does not start is a failure, not a skip.
    def on_alarm(signum, frame):
        raise TimeoutError("chromium did not start within %ds" % LAUNCH_TIMEOUT)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(LAUNCH_TIMEOUT)
    try:
        d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    except Exception as e:  # the browser cannot run on this machine
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("headless Chromium does not start here: %s" % str(e).splitlines()[0])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    d.set_page_load_timeout(20)
    d.set_script_timeout(10)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = os.environ.get("CAIRN_SCREENSHOT_DIR") or str(tmp_path_factory.mktemp("shots"))
    os.makedirs(d, exist_ok=True)
    return d


def wait_for(pred, what, timeout=WAIT):
    """pred() until truthy (exceptions count as not yet: the page redraws
    its tables every 2 s, so an element may go stale between two calls)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # stale element, not yet there
            last = e
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last error: %r)" % (what, last))


def js(d, script, *args):
    return d.execute_script(script, *args)


def open_view(d, broker, view):
    if not d.current_url.startswith(broker.http_url + "/console"):
        d.get(broker.http_url + "/")  # the redirect to /console
        assert d.current_url == broker.http_url + "/console"
    js(d, "location.hash = arguments[0]", "#" + view)
    wait_for(lambda: js(d, "return document.body.dataset.loaded") == view, "view %s" % view)


def text(d, css):
    return js(d, "const e = document.querySelector(arguments[0]); return e ? e.textContent : null", css)


def row_cells(d, css):
    """Texts of the cells of each row matching css."""
    return js(d, """return [...document.querySelectorAll(arguments[0])]
                    .map(r => [...r.cells].map(c => c.textContent));""", css)


def click(d, css):
    """Click the element css once it exists (by script: the tables are
    redrawn under the pointer)."""
    wait_for(lambda: js(d, "const e = document.querySelector(arguments[0]);"
                        "if (!e) return false; e.click(); return true;", css), "click %s" % css)


def set_value(d, css, value):
    js(d, """const e = document.querySelector(arguments[0]); e.value = arguments[1];
             e.dispatchEvent(new Event('input', {bubbles: true}));
             e.dispatchEvent(new Event('change', {bubbles: true}));""", css, value)


def save_shot(d, shots, name):
    path = os.path.join(shots, name)
    assert d.save_screenshot(path)
    with open(path, "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 10000, path
    return path


# ---------------------------------------------------------------- data made with real clients

def kafka_produce(broker, topic, records):
    """records: (partition, key, value); returns [(partition, offset)]."""
    p = ckhelp.producer(broker.bootstrap, acks="all")
    dl = ckhelp.Deliveries()
    for part, key, value in records:
        p.produce(topic, value=value, key=key, partition=part, on_delivery=dl.cb())
    ckhelp.flush(p)
    assert not dl.failed, dl.failed
    return [(part, off) for _, _, part, off in dl.ok]


def committed(broker, group, topic, partitions):
    c = ckhelp.consumer(broker.bootstrap, group_id=group)
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


@pytest.fixture(scope="module")
def world(broker):
    """A 3-partition topic with 30 Kafka records (10 a partition, mixed JSON,
    text and binary values on partition 0) and a group whose committed
    offsets leave a known lag."""
    topic = unique_topic("console")
    ckhelp.create_topic(broker.bootstrap, topic, partitions=3)
    recs = []
    for p in range(3):
        for i in range(10):
            if p == 0 and i == 0:
                v = json.dumps({"a": 1, "nested": {"b": [1, 2]}}).encode()
            elif p == 0 and i == 1:
                v = b"plain text value"
            elif p == 0 and i == 2:
                v = b"\x00\xff\x10binary"
            elif p == 0 and i == 3:
                v = b'{"id": 12345678901234567891}'
            else:
                v = ("rec-%d-%d" % (p, i)).encode()
            recs.append((p, ("k%d" % i).encode(), v))
    kafka_produce(broker, topic, recs)
    group = unique_topic("console-group")
    c = ckhelp.consumer(broker.bootstrap, group_id=group)
    c.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 10),
                      TopicPartition(topic, 2, 7)], asynchronous=False)
    c.close()
    return {"topic": topic, "group": group, "lag": {0: 6, 1: 0, 2: 3}}


# ---------------------------------------------------------------- the files, over plain HTTP

class Raw:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def getheader(self, name):
        return self.headers.get(name.lower())


def request(broker, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Raw(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def test_console_files_served(broker):
    r = request(broker, "GET", "/")
    assert r.status == 302 and r.getheader("Location") == "/console"
    page = request(broker, "GET", "/console")
    assert page.status == 200
    assert page.getheader("Content-Type") == "text/html; charset=utf-8"
    assert page.getheader("Cache-Control") == "no-cache"
    assert b"/console/app.js" in page.body and b"/console/style.css" in page.body
    for name, ctype in (("app.js", "text/javascript; charset=utf-8"),
                        ("style.css", "text/css; charset=utf-8")):
        r = request(broker, "GET", "/console/" + name)
        assert r.status == 200 and r.getheader("Content-Type") == ctype
        src = os.path.join(os.path.dirname(__file__), "../../../src/http/console", name)
        assert r.body == open(src, "rb").read(), "the binary embeds a stale %s" % name
        etag = r.getheader("ETag")
        assert etag and etag.startswith('"') and etag.endswith('"')
        again = request(broker, "GET", "/console/" + name, headers={"If-None-Match": etag})
        assert again.status == 304 and again.body == b"" and again.getheader("ETag") == etag
        assert again.getheader("Content-Length") is None  # RFC 9110 8.6
        other = request(broker, "GET", "/console/" + name, headers={"If-None-Match": '"x"'})
        assert other.status == 200 and len(other.body) == len(r.body)
    # A 304 has no length: the next request on the connection still works.
    conn = http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=10)
    try:
        for _ in range(2):
            conn.request("GET", "/console/style.css", headers={"If-None-Match": "*"})
            r = conn.getresponse()
            assert r.status == 304 and r.read() == b""
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())
    finally:
        conn.close()
    for bad in ("/console/nope.js", "/console/index.html", "/console/../metrics"):
        r = request(broker, "GET", bad)
        assert r.status == 404 and json.loads(r.body)["error_code"] == "not_found", bad
    r = request(broker, "POST", "/console", body=b"{}")
    assert r.status == 405 and "GET" in r.getheader("Allow")
    # The API keeps saying no-store.
    assert request(broker, "GET", "/topics").getheader("Cache-Control") == "no-store"


# ---------------------------------------------------------------- in Chromium

def test_overview_rates_and_listeners(driver, broker, world, shots):
    topic = unique_topic("console-load")  # load elsewhere: world's counts stay exact
    ckhelp.create_topic(broker.bootstrap, topic, partitions=2)
    stop = threading.Event()

    def produce_steadily():
        p = ckhelp.producer(broker.bootstrap, linger_ms=5)
        while not stop.is_set():
            for i in range(50):
                p.produce(topic, value=b"x" * 100, key=b"load%d" % i)
            p.poll(0)
            time.sleep(0.05)
        p.flush(10)

    def consume_steadily():
        c = ckhelp.consumer(broker.bootstrap)
        c.assign([TopicPartition(topic, p, 0) for p in range(2)])
        while not stop.is_set():
            c.consume(num_messages=500, timeout=0.2)
        c.close()

    threads = [threading.Thread(target=f) for f in (produce_steadily, consume_steadily)]
    for t in threads:
        t.start()
    try:
        open_view(driver, broker, "overview")
        n_topics = len(get(broker, "/topics")[2]["topics"])
        wait_for(lambda: text(driver, "#ov-topics") == str(n_topics), "topic count")
        parts = sum(x["partitions"] for x in get(broker, "/topics")[2]["topics"])
        assert text(driver, "#ov-partitions") == str(parts)
        wait_for(lambda: int(text(driver, "#ov-groups")) >= 1, "group count")
        protos = {r[0]: r[1] for r in row_cells(driver, "#ov-listeners tbody tr")}
        assert protos["kafka"] == "127.0.0.1:%d" % broker.port
        assert protos["http"] == "127.0.0.1:%d" % broker.http_port
        # Rates come from /metrics deltas: positive while the producer runs,
        # and the chart has points.
        wait_for(lambda: float(text(driver, "#ov-prod-rate")) > 0, "a produce rate", timeout=20)
        # Read rates in bytes/s (Kafka's fetch counts bytes, not records).
        wait_for(lambda: text(driver, "#ov-read-bytes").endswith("/s") and
                 not text(driver, "#ov-read-bytes").startswith("0 "), "a read rate", timeout=20)
        assert not text(driver, "#ov-prod-bytes").startswith("0 ")
        wait_for(lambda: js(driver, "return metrics.history.length") >= 5, "5 chart samples",
                 timeout=20)
        assert "ready" == text(driver, "#ready")
        save_shot(driver, shots, "console-overview.png")
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_topics_and_partitions(driver, broker, world, shots):
    topic = world["topic"]
    open_view(driver, broker, "topics")
    sel = '#topics-table tr[data-topic="%s"]' % topic
    row = wait_for(lambda: row_cells(driver, sel), "topic row")[0]
    assert row[0] == topic and row[1] == "3"
    assert row[2] == "30"
    size = sum(p["size_bytes"] for p in get(broker, "/topics/" + topic)[2]["partitions"])
    assert row[3].endswith("B") and size > 0
    click(driver, sel + " a.topic-link")
    rows = wait_for(lambda: row_cells(driver, "#partitions-table tbody tr"), "partition rows")
    assert [r[0] for r in rows] == ["0", "1", "2"]
    for r in rows:
        lo, hi = ckhelp.watermarks(broker.bootstrap, topic, int(r[0]))
        assert (int(r[1]), int(r[2]), int(r[3]), int(r[4])) == (lo, hi, hi, hi) == (0, 10, 10, 10)
    save_shot(driver, shots, "console-topics.png")


def test_create_topic_and_publish(driver, broker, world):
    open_view(driver, broker, "topics")
    name = unique_topic("made-in-browser")
    set_value(driver, "#create-topic-name", name)
    set_value(driver, "#create-topic-partitions", "2")
    set_value(driver, "#create-topic-retention", "3600000")
    click(driver, "#create-topic-btn")
    wait_for(lambda: "created" in (text(driver, "#create-topic-result") or ""), "created")
    md = ckhelp.wait_topic(broker.bootstrap, name, partitions=2)
    assert md is not None
    d = get(broker, "/topics/" + name)[2]
    assert d["configs"]["retention.ms"] == {"value": "3600000", "default": False}
    wait_for(lambda: row_cells(driver, '#topics-table tr[data-topic="%s"]' % name), "new row")
    # Publish to it from the page, then read it with a Kafka consumer.
    wait_for(lambda: js(driver, "return [...document.querySelectorAll('#publish-topic option')]"
                        ".some(o => o.value === arguments[0])", name), "topic in publish list")
    set_value(driver, "#publish-topic", name)
    set_value(driver, "#publish-partition", "1")
    set_value(driver, "#publish-key", "browser-key")
    set_value(driver, "#publish-value", '{"from": "chromium", "n": 7}')
    click(driver, "#publish-btn")
    msg = wait_for(lambda: (lambda t: t if "offset" in t else None)(
        text(driver, "#publish-result") or ""), "publish result")
    assert "partition 1 at offset 0" in msg, msg
    got = ckhelp.consume_all(broker.bootstrap, name, partitions=(0, 1))
    assert not got.get(0)
    assert [(m.partition(), m.offset(), m.key(), m.value()) for m in got[1]] == [
        (1, 0, b"browser-key", b'{"from": "chromium", "n": 7}')]


def test_message_browser_formats(driver, broker, world, shots):
    topic = world["topic"]
    open_view(driver, broker, "topics")
    click(driver, '#topics-table tr[data-topic="%s"] button.browse' % topic)
    wait_for(lambda: js(driver, "return document.body.dataset.loaded") == "messages", "messages")
    rows = wait_for(lambda: row_cells(driver, "#messages-table tbody tr[data-offset]"), "records")
    assert rows[0][0] == "0" and rows[0][2] == "k0"
    # JSON (the default): pretty-printed over several lines.
    assert json.loads(rows[0][3]) == {"a": 1, "nested": {"b": [1, 2]}} and "\n" in rows[0][3]
    assert rows[1][3] == "plain text value"
    assert rows[2][3].endswith("binary")  # shown as text, lossy
    # An integer JSON.parse would round is shown as sent, not rounded.
    assert rows[3][3] == '{"id": 12345678901234567891}'
    click(driver, 'input[name="fmt"][value="hex"]')
    wait_for(lambda: row_cells(driver, "#messages-table tbody tr")[2][3].startswith(
        "000000  00 ff 10 62 69 6e 61 72 79"), "hex dump")
    click(driver, 'input[name="fmt"][value="text"]')
    wait_for(lambda: row_cells(driver, "#messages-table tbody tr")[0][3] ==
             '{"a": 1, "nested": {"b": [1, 2]}}', "raw text")
    click(driver, 'input[name="fmt"][value="json"]')
    save_shot(driver, shots, "console-messages.png")
    # From an offset, with a page size, and the next page.
    set_value(driver, "#browse-max", "3")
    set_value(driver, "#browse-offset", "5")
    click(driver, "#browse-btn")
    wait_for(lambda: [r[0] for r in row_cells(driver, "#messages-table tbody tr")] ==
             ["5", "6", "7"], "offsets 5..7")
    click(driver, "#browse-next")
    wait_for(lambda: [r[0] for r in row_cells(driver, "#messages-table tbody tr")][:1] == ["8"],
             "next page")
    # Another partition.
    set_value(driver, "#browse-partition", "2")
    wait_for(lambda: [r[2] for r in row_cells(driver, "#messages-table tbody tr")][:3] ==
             ["rec-2-0", "rec-2-1", "rec-2-2"] or
             [r[3] for r in row_cells(driver, "#messages-table tbody tr")][:3] ==
             ["rec-2-0", "rec-2-1", "rec-2-2"], "partition 2")


def test_groups_lag_and_reset(driver, broker, world, shots):
    topic, group = world["topic"], world["group"]
    open_view(driver, broker, "groups")
    sel = '#groups-table tr[data-group="%s"]' % group
    row = wait_for(lambda: row_cells(driver, sel), "group row")[0]
    assert row[1] == "Empty" and row[3] == "0"
    api_lag = get(broker, "/groups/" + group)[2]["total_lag"]
    assert int(row[4]) == api_lag
    click(driver, sel + " a.group-link")
    lag = wait_for(lambda: {int(r[1]): int(r[4]) for r in
                            row_cells(driver, "#group-offsets tbody tr")}, "offset rows")
    assert lag == world["lag"] and int(row[4]) == sum(lag.values())
    save_shot(driver, shots, "console-groups.png")
    # Reset partition offsets to the earliest from the page; Kafka sees it.
    set_value(driver, "#reset-topic", topic)
    set_value(driver, "#reset-to", "earliest")
    click(driver, "#reset-btn")
    wait_for(lambda: (text(driver, "#reset-result") or "").startswith("set "), "reset result")
    assert committed(broker, group, topic, 3) == {0: 0, 1: 0, 2: 0}
    wait_for(lambda: all(r[2] == "0" for r in row_cells(driver, "#group-offsets tbody tr")),
             "committed 0 on the page")
    # An explicit offset, dry run first (nothing changes), then for real.
    set_value(driver, "#reset-to", "offset")
    set_value(driver, "#reset-offset", "3")
    js(driver, "document.getElementById('reset-dry').checked = true")
    click(driver, "#reset-btn")
    wait_for(lambda: (text(driver, "#reset-result") or "").startswith("would set"), "dry run")
    assert committed(broker, group, topic, 3) == {0: 0, 1: 0, 2: 0}
    js(driver, "document.getElementById('reset-dry').checked = false")
    click(driver, "#reset-btn")
    wait_for(lambda: (text(driver, "#reset-result") or "").startswith("set "), "reset to 3")
    assert committed(broker, group, topic, 3) == {0: 3, 1: 3, 2: 3}


def test_delete_group(driver, broker, world):
    topic = world["topic"]
    group = unique_topic("console-gone-group")
    c = ckhelp.consumer(broker.bootstrap, group_id=group)
    c.commit(offsets=[TopicPartition(topic, 1, 5)], asynchronous=False)
    c.close()
    open_view(driver, broker, "groups")
    sel = '#groups-table tr[data-group="%s"]' % group
    assert wait_for(lambda: row_cells(driver, sel), "group row")[0][4] == "5"
    driver.execute_script("window.confirm = () => true")
    click(driver, sel + " button.danger")
    wait_for(lambda: not row_cells(driver, sel), "group row gone")
    assert get(broker, "/groups/" + group)[0] == 404
    assert committed(broker, group, topic, 3)[1] < 0  # no committed offset left


def test_reset_refused_while_group_has_members(driver, broker, world):
    topic = unique_topic("console-live")
    ckhelp.create_topic(broker.bootstrap, topic, partitions=1)
    group = unique_topic("console-live-group")
    c = ckhelp.consumer(broker.bootstrap, group_id=group)
    c.subscribe([topic])
    try:
        wait_for(lambda: c.poll(0.2) is not None or c.assignment(), "assignment", timeout=20)
        open_view(driver, broker, "groups")
        sel = '#groups-table tr[data-group="%s"]' % group
        wait_for(lambda: row_cells(driver, sel)[0][3] == "1", "one member")
        click(driver, sel + " a.group-link")
        wait_for(lambda: row_cells(driver, "#group-members tbody tr"), "member row")
        set_value(driver, "#reset-topic", topic)
        set_value(driver, "#reset-to", "latest")
        click(driver, "#reset-btn")
        msg = wait_for(lambda: (lambda t: t if "group_not_empty" in t else None)(
            text(driver, "#reset-result") or ""), "refusal")
        assert "HTTP 409" in msg
    finally:
        c.close()


def test_webhook_subscriptions(driver, broker, world):
    et = unique_topic("console-events")
    st, _, body = post(broker, "/event/subscribe", {
        "event_type": et, "callback": "http://127.0.0.1:9/hook", "id": "console-sub",
        "max_attempts": 2})
    assert st in (200, 201), body
    post(broker, "/event/publish", {"event_type": et, "data": {"n": 1}})
    open_view(driver, broker, "webhooks")
    row = wait_for(lambda: row_cells(driver, '#webhooks-table tr[data-sub="console-sub"]'),
                   "subscription row")[0]
    assert row[1] == et and row[2] == "http://127.0.0.1:9/hook"
    # Delivery to a closed port fails: the page shows the failures counted.
    wait_for(lambda: int(row_cells(driver, '#webhooks-table tr[data-sub="console-sub"]')[0][6]) >= 1,
             "a failed attempt", timeout=20)
    driver.execute_script("window.confirm = () => true")
    click(driver, '#webhooks-table tr[data-sub="console-sub"] button.danger')
    wait_for(lambda: not row_cells(driver, '#webhooks-table tr[data-sub="console-sub"]'), "gone")
    assert get(broker, "/event/subscriptions/console-sub")[0] == 404


def test_delete_topic(driver, broker, world):
    name = unique_topic("console-doomed")
    ckhelp.create_topic(broker.bootstrap, name, partitions=1)
    open_view(driver, broker, "topics")
    sel = '#topics-table tr[data-topic="%s"]' % name
    wait_for(lambda: row_cells(driver, sel), "row to delete")
    driver.execute_script("window.confirm = () => true")
    click(driver, sel + " button.delete-topic")
    wait_for(lambda: not row_cells(driver, sel), "row gone")
    assert get(broker, "/topics/" + name)[0] == 404
    md = ckhelp.admin(broker.bootstrap).list_topics(timeout=10)
    assert name not in md.topics


def test_amqp_queues_and_exchanges(driver, broker):
    pika = pytest.importorskip("pika")
    q, x = unique_topic("console-q"), unique_topic("console-x")
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", broker.amqp_port))
    try:
        ch = conn.channel()
        ch.queue_declare(q, durable=True)
        ch.exchange_declare(x, "direct", durable=True)
        ch.queue_bind(q, x, routing_key="k")
        ch.confirm_delivery()  # each publish below returns once the broker has it
        for i in range(3):
            ch.basic_publish("", q, b"m%d" % i)
        open_view(driver, broker, "overview")
        sel = "#ov-amqp tbody tr"
        row = wait_for(lambda: [r for r in row_cells(driver, sel) if r[0] == q], "queue row")[0]
        assert row[1] == "3" and row[3] == "0" and row[4] == "0" and row[5:] == ["classic", "yes"]
        assert js(driver, "return document.getElementById('ov-amqp-wrap').hidden") is False
        xrow = wait_for(lambda: [r for r in row_cells(driver, "#ov-amqp-x tbody tr") if r[0] == x],
                        "exchange row")[0]
        assert xrow[1:4] == ["direct", "yes", "1"], xrow
    finally:
        conn.close()
