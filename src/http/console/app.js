// Cairn web console: one page over the broker's JSON API (fetch()), no
// framework. Views follow location.hash; the active view refreshes every
// REFRESH_MS, and /metrics is sampled on the same tick so that rates are
// deltas of the counters between two samples. Everything from the broker is
// put on the page as text (textContent), never as markup.
"use strict";

const REFRESH_MS = 2000;
const HISTORY = 60; // chart points (2 minutes at REFRESH_MS)

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of kids.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || ("HTTP " + status));
    this.status = status;
    this.code = body && body.error_code;
    this.body = body;
  }
}

async function api(method, path, body) {
  const opt = { method, headers: {} };
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    opt.body = JSON.stringify(body);
  }
  const r = await fetch(path, opt);
  const text = await r.text();
  let j = null;
  try { j = text ? JSON.parse(text) : null; } catch (e) { j = { message: text }; }
  if (!r.ok) throw new ApiError(r.status, j);
  return j;
}

function errText(e) {
  return e instanceof ApiError ? `${e.message} (${e.code || "error"}, HTTP ${e.status})` : String(e);
}

function banner(msg) {
  const b = $("banner");
  b.hidden = !msg;
  b.textContent = msg || "";
}

function showResult(node, ok, msg) {
  node.className = "result " + (ok ? "ok" : "bad");
  node.textContent = msg;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function fmtRate(x) {
  if (x === null || x === undefined || !isFinite(x)) return "–";
  return x >= 100 ? Math.round(x).toString() : x.toFixed(1);
}
function fmtDuration(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + s + "s";
}
function fmtTime(ms) {
  return ms === null || ms === undefined ? "–" : new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

function fillTbody(table, rows, empty) {
  const tb = table.tBodies[0];
  tb.replaceChildren(...rows);
  if (!rows.length && empty) {
    const n = table.tHead.rows[0].cells.length;
    tb.append(el("tr", {}, el("td", { colspan: n, class: "muted" }, empty)));
  }
}

// ---------------------------------------------------------------- metrics

// Prometheus text format: {name: [{labels, value}]} for the samples we use.
function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    (out[m[1]] = out[m[1]] || []).push({ labels, value: parseFloat(m[4]) });
  }
  return out;
}

const metrics = {
  prev: null,        // {t, totals, perTopic}
  rates: null,       // {prod, read, prodBytes, readBytes, topics: {name: {prod, read}}}
  history: [],       // [{t, prod, read}]
  last: null,        // parsed metrics of the last sample
};

function sumBy(samples, key) {
  const per = {};
  let total = 0;
  for (const s of samples || []) {
    total += s.value;
    const k = s.labels[key];
    if (k !== undefined) per[k] = (per[k] || 0) + s.value;
  }
  return { total, per };
}

async function sampleMetrics() {
  const r = await fetch("/metrics");
  if (!r.ok) throw new ApiError(r.status, null);
  const m = parseMetrics(await r.text());
  const t = performance.now();
  const pr = sumBy(m.cairn_produced_records_total, "topic");
  const rr = sumBy(m.cairn_read_records_total, "topic");
  const pb = sumBy(m.cairn_produced_bytes_total, "topic");
  const rb = sumBy(m.cairn_read_bytes_total, "topic");
  const cur = { t, pr, rr, pb, rb };
  const p = metrics.prev;
  if (p && t > p.t) {
    const dt = (t - p.t) / 1000;
    const d = (a, b) => Math.max(0, a - b) / dt; // a counter reset (restart) is not negative
    const topics = {};
    for (const name of Object.keys(pr.per)) {
      topics[name] = {
        prod: d(pr.per[name], p.pr.per[name] || 0),
        readBytes: d(rb.per[name] || 0, p.rb.per[name] || 0),
      };
    }
    metrics.rates = {
      prod: d(pr.total, p.pr.total), read: d(rr.total, p.rr.total),
      prodBytes: d(pb.total, p.pb.total), readBytes: d(rb.total, p.rb.total), topics,
    };
    // Charted in bytes/s: Kafka's zero-copy fetch counts read bytes, not records.
    metrics.history.push({ t, prod: metrics.rates.prodBytes, read: metrics.rates.readBytes });
    if (metrics.history.length > HISTORY) metrics.history.shift();
  }
  metrics.prev = cur;
  metrics.last = m;
}

function drawChart(canvas, hist) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 30;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#667";
  ctx.strokeStyle = "#dde";
  const max = Math.max(1, ...hist.map((h) => Math.max(h.prod, h.read)));
  for (let i = 0; i <= 4; i++) {
    const y = H - pad + (-(H - 2 * pad) * i) / 4;
    ctx.beginPath(); ctx.moveTo(pad + 40, y); ctx.lineTo(W - 5, y); ctx.stroke();
    ctx.fillText(fmtBytes(Math.round((max * i) / 4)), 2, y + 4);
  }
  if (hist.length < 2) {
    ctx.fillText("collecting samples…", W / 2 - 50, H / 2);
    return;
  }
  // The x axis grows with the samples up to HISTORY, then scrolls.
  const slots = Math.min(HISTORY, Math.max(hist.length, 6));
  const x = (i) => pad + 40 + ((W - pad - 45) * i) / (slots - 1);
  const y = (v) => H - pad - ((H - 2 * pad) * v) / max;
  // read dashed and under produced: the two often coincide.
  for (const [key, color, dash] of [["read", "#2fa36b", [6, 4]], ["prod", "#2b7bd6", []]]) {
    ctx.strokeStyle = color;
    ctx.setLineDash(dash);
    ctx.lineWidth = 2;
    ctx.beginPath();
    const off = slots - hist.length;
    hist.forEach((h, i) => (i ? ctx.lineTo(x(i + off), y(h[key])) : ctx.moveTo(x(i + off), y(h[key]))));
    ctx.stroke();
    ctx.lineWidth = 1;
    ctx.setLineDash([]);
  }
}

// ---------------------------------------------------------------- shared state

const state = {
  topics: [],          // from GET /topics
  browse: { topic: null, partition: 0, offset: 0, next: null },
  openTopic: null,     // topic whose partitions are shown
  openGroup: null,
};

async function loadTopics() {
  const j = await api("GET", "/topics");
  state.topics = j.topics.slice().sort((a, b) => a.name.localeCompare(b.name));
  for (const sel of document.querySelectorAll(".topic-select")) {
    const cur = sel.value;
    sel.replaceChildren(...state.topics.map((t) => el("option", { value: t.name }, t.name)));
    if (state.topics.some((t) => t.name === cur)) sel.value = cur;
  }
  return state.topics;
}

// ---------------------------------------------------------------- overview

async function renderOverview() {
  const [broker, topics, groups, subs] = await Promise.all([
    api("GET", "/broker"), loadTopics(), api("GET", "/groups"),
    api("GET", "/event/subscriptions").catch(() => null),
  ]);
  $("ov-topics").textContent = topics.length;
  $("ov-partitions").textContent = topics.reduce((a, t) => a + t.partitions, 0);
  $("ov-groups").textContent = groups.groups.length;
  $("ov-webhooks").textContent = subs ? subs.subscriptions.length : "n/a";
  const r = metrics.rates;
  $("ov-prod-rate").textContent = r ? fmtRate(r.prod) : "–";
  $("ov-prod-bytes").textContent = r ? fmtBytes(Math.round(r.prodBytes)) + "/s" : "–";
  $("ov-read-bytes").textContent = r ? fmtBytes(Math.round(r.readBytes)) + "/s" : "–";
  drawChart($("rate-chart"), metrics.history);
  const kv = [
    ["Version", broker.version], ["Node id", broker.node_id], ["Cluster id", broker.cluster_id],
    ["Data directory", broker.data_dir], ["Uptime", fmtDuration(broker.uptime_ms)],
  ];
  $("ov-node").replaceChildren(...kv.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  fillTbody($("ov-listeners"), broker.listeners.map((l) =>
    el("tr", { dataset: { protocol: l.protocol } }, el("td", {}, l.protocol),
      el("td", {}, (l.host.includes(":") ? "[" + l.host + "]" : l.host) + ":" + l.port),
      el("td", { class: "num" }, l.connections), el("td", { class: "num" }, l.connections_accepted))));
  // AMQP objects from the AMQP front end (GET /amqp/queues, /amqp/exchanges).
  const [aq, ax] = await Promise.all([
    api("GET", "/amqp/queues").catch(() => null), api("GET", "/amqp/exchanges").catch(() => null),
  ]);
  const queues = aq ? aq.queues.slice().sort((a, b) => a.name.localeCompare(b.name)) : [];
  $("ov-amqp-wrap").hidden = !queues.length;
  fillTbody($("ov-amqp"), queues.map((q) => el("tr", { dataset: { queue: q.name } }, el("td", {}, q.name),
    el("td", { class: "num" }, q.messages_ready), el("td", { class: "num" }, fmtBytes(q.messages_ready_bytes)),
    el("td", { class: "num" }, q.messages_unacked), el("td", { class: "num" }, q.consumers),
    el("td", {}, q.type), el("td", {}, q.durable ? "yes" : "no"))));
  const exchanges = ax ? ax.exchanges.filter((x) => !x.builtin).sort((a, b) => a.name.localeCompare(b.name)) : [];
  $("ov-amqp-x-wrap").hidden = !exchanges.length;
  fillTbody($("ov-amqp-x"), exchanges.map((x) => el("tr", { dataset: { exchange: x.name } }, el("td", {}, x.name),
    el("td", {}, x.type), el("td", {}, x.durable ? "yes" : "no"), el("td", { class: "num" }, x.bindings),
    el("td", {}, x.alternate_exchange ?? "–"))));
}

// ---------------------------------------------------------------- topics

async function renderTopics() {
  const topics = await loadTopics();
  const described = await Promise.all(topics.map((t) => api("GET", "/topics/" + encodeURIComponent(t.name)).catch(() => null)));
  const rates = (metrics.rates && metrics.rates.topics) || {};
  fillTbody($("topics-table"), topics.map((t, i) => {
    const d = described[i];
    const recs = d ? d.partitions.reduce((a, p) => a + (p.high_watermark - p.log_start_offset), 0) : null;
    const size = d ? d.partitions.reduce((a, p) => a + p.size_bytes, 0) : null;
    const rt = rates[t.name];
    return el("tr", { dataset: { topic: t.name }, class: state.openTopic === t.name ? "sel" : "" },
      el("td", {}, el("a", { href: "#", class: "topic-link", onclick: (e) => { e.preventDefault(); state.openTopic = t.name; renderTopics().catch(fail); } }, t.name)),
      el("td", { class: "num" }, t.partitions), el("td", { class: "num" }, recs ?? "–"),
      el("td", { class: "num" }, fmtBytes(size)),
      el("td", { class: "num" }, rt ? fmtRate(rt.prod) : "–"), el("td", { class: "num" }, rt ? fmtBytes(Math.round(rt.readBytes)) + "/s" : "–"),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "browse", onclick: () => openBrowser(t.name, 0) }, "Browse"),
        el("button", { type: "button", class: "danger delete-topic", onclick: () => deleteTopic(t.name) }, "Delete")));
  }), "no topics");
  const det = $("topic-detail");
  const idx = topics.findIndex((t) => t.name === state.openTopic);
  if (idx < 0 || !described[idx]) { det.replaceChildren(); return; }
  const d = described[idx];
  const cfg = Object.entries(d.configs || {}).filter(([, v]) => !v.default);
  det.replaceChildren(
    el("h2", {}, "Partitions of ", el("code", {}, d.name)),
    el("table", { id: "partitions-table" },
      el("thead", {}, el("tr", {}, ["Partition", "Log start", "Log end", "High watermark", "Last stable", "Size", ""].map((h, i) => el("th", { class: i < 6 ? "num" : null }, h)))),
      el("tbody", {}, d.partitions.map((p) => el("tr", { dataset: { partition: p.partition } },
        el("td", { class: "num" }, p.partition), el("td", { class: "num" }, p.log_start_offset),
        el("td", { class: "num" }, p.log_end_offset), el("td", { class: "num" }, p.high_watermark),
        el("td", { class: "num" }, p.last_stable_offset), el("td", { class: "num" }, fmtBytes(p.size_bytes)),
        el("td", {}, el("button", { type: "button", onclick: () => openBrowser(d.name, p.partition) }, "Browse")))))),
    el("p", { class: "muted" }, "Topic id ", d.topic_id, cfg.length ? "; configs set: " + cfg.map(([k, v]) => k + "=" + v.value).join(", ") : "; all configs default"));
}

async function deleteTopic(name) {
  if (!confirm(`Delete topic "${name}" and all its records?`)) return;
  try {
    await api("DELETE", "/topics/" + encodeURIComponent(name));
    if (state.openTopic === name) state.openTopic = null;
    banner("");
    await renderTopics();
  } catch (e) { fail(e); }
}

async function createTopic(ev) {
  ev.preventDefault();
  const res = $("create-topic-result");
  const body = { name: $("create-topic-name").value.trim(), partitions: parseInt($("create-topic-partitions").value, 10) || 1 };
  const ret = $("create-topic-retention").value.trim();
  if (ret) body.configs = { "retention.ms": ret };
  try {
    const j = await api("POST", "/topics", body);
    showResult(res, true, `created ${j.name} with ${j.partitions} partition(s)`);
    state.openTopic = j.name;
    await renderTopics();
  } catch (e) { showResult(res, false, errText(e)); }
}

async function publish(ev) {
  ev.preventDefault();
  const res = $("publish-result");
  const topic = $("publish-topic").value;
  if (!topic) { showResult(res, false, "create a topic first"); return; }
  const rec = { value: $("publish-value").value };
  const key = $("publish-key").value;
  if (key !== "") rec.key = key;
  const part = $("publish-partition").value;
  if (part !== "") rec.partition = parseInt(part, 10);
  try {
    const j = await api("POST", "/topics/" + encodeURIComponent(topic) + "/records", { records: [rec] });
    const o = j.offsets[0];
    showResult(res, true, `stored in ${topic} partition ${o.partition} at offset ${o.offset}`);
    await renderTopics();
  } catch (e) { showResult(res, false, errText(e)); }
}

// ---------------------------------------------------------------- message browser

function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
// The record field as {bytes, text}: text is the string when the API sent
// one (valid UTF-8), else a lossy decoding of the base64 bytes.
function fieldOf(rec, name) {
  if (rec[name + "_b64"] !== undefined) {
    const bytes = b64bytes(rec[name + "_b64"]);
    return { bytes, text: new TextDecoder("utf-8").decode(bytes), binary: true };
  }
  if (rec[name] === null || rec[name] === undefined) return null;
  return { bytes: new TextEncoder().encode(rec[name]), text: rec[name], binary: false };
}
function hexdump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = Array.from(bytes.slice(i, i + 16));
    const hex = row.map((b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(47);
    const asc = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(i.toString(16).padStart(6, "0") + "  " + hex + "  " + asc);
  }
  return lines.join("\n");
}
function renderField(f, fmt) {
  if (!f) return el("span", { class: "muted" }, "null");
  if (fmt === "hex") return el("pre", { class: "hex" }, hexdump(f.bytes) || "(empty)");
  // JSON.parse rounds integers past 2^53: such values are shown as sent.
  if (fmt === "json" && !f.binary && !/(^|[^\d.eE+-])-?\d{16,}/.test(f.text)) {
    try {
      return el("pre", { class: "json" }, JSON.stringify(JSON.parse(f.text), null, 2));
    } catch (e) { /* not JSON: shown as text */ }
  }
  return el("pre", { class: f.binary ? "text binary" : "text" }, f.text === "" ? "(empty)" : f.text);
}

function browseFormat() {
  const r = document.querySelector('input[name="fmt"]:checked');
  return r ? r.value : "json";
}

async function fillPartitions(topic, want) {
  const sel = $("browse-partition");
  const t = state.topics.find((x) => x.name === topic);
  const n = t ? t.partitions : 0;
  sel.replaceChildren(...Array.from({ length: n }, (_, i) => el("option", { value: i }, i)));
  if (want !== undefined && want < n) sel.value = String(want);
}

function openBrowser(topic, partition) {
  state.browse = { topic, partition, offset: null, next: null };
  location.hash = "#messages";
}

async function readRecords(offset) {
  const b = state.browse;
  const max = Math.min(500, Math.max(1, parseInt($("browse-max").value, 10) || 50));
  const path = `/topics/${encodeURIComponent(b.topic)}/partitions/${b.partition}/records?offset=${offset}&timeout_ms=0&max_bytes=1048576`;
  const j = await api("GET", path);
  const recs = j.records.slice(0, max);
  b.offset = offset;
  b.next = recs.length ? recs[recs.length - 1].offset + 1 : j.next_offset;
  b.info = j;
  b.records = recs;
  $("browse-offset").value = offset;
  drawRecords();
}

function drawRecords() {
  const b = state.browse, j = b.info;
  if (!j) return;
  const fmt = browseFormat();
  $("browse-info").textContent = `${b.topic} / ${b.partition}: offsets ${j.log_start_offset} .. ${j.high_watermark - 1} ` +
    `(high watermark ${j.high_watermark}, last stable ${j.last_stable_offset}); showing ${b.records.length} from ${b.offset}`;
  fillTbody($("messages-table"), b.records.map((r) => {
    const hdrs = (r.headers || []).map(([k, v]) => (typeof k === "string" ? k : "(b64)" + k.b64) + "=" +
      (v === null ? "null" : typeof v === "string" ? v : "(b64)" + v.b64));
    return el("tr", { dataset: { offset: r.offset } }, el("td", { class: "num" }, r.offset),
      el("td", { class: "ts" }, fmtTime(r.timestamp)),
      el("td", {}, renderField(fieldOf(r, "key"), fmt === "json" ? "text" : fmt)),
      el("td", { class: "value" }, renderField(fieldOf(r, "value"), fmt)),
      el("td", { class: "small" }, hdrs.join("\n")));
  }), "no records at this position");
}

async function renderMessages() {
  await loadTopics();
  const b = state.browse;
  if (!b.topic || !state.topics.some((t) => t.name === b.topic)) {
    b.topic = state.topics.length ? state.topics[0].name : null;
    b.partition = 0;
    b.offset = null;
  }
  if (!b.topic) { $("browse-info").textContent = "no topics yet"; fillTbody($("messages-table"), []); return; }
  $("browse-topic").value = b.topic;
  await fillPartitions(b.topic, b.partition);
  if (b.offset === null) {
    const d = await api("GET", "/topics/" + encodeURIComponent(b.topic));
    const p = d.partitions.find((x) => x.partition === b.partition) || d.partitions[0];
    await readRecords(p ? p.log_start_offset : 0);
  }
}

async function browseEdge(which) {
  const b = state.browse;
  const d = await api("GET", "/topics/" + encodeURIComponent(b.topic));
  const p = d.partitions.find((x) => x.partition === b.partition);
  if (!p) return;
  const max = parseInt($("browse-max").value, 10) || 50;
  await readRecords(which === "earliest" ? p.log_start_offset : Math.max(p.log_start_offset, p.last_stable_offset - max));
}

// ---------------------------------------------------------------- groups

async function renderGroups() {
  const [list] = await Promise.all([api("GET", "/groups"), loadTopics()]);
  const groups = list.groups.slice().sort((a, b) => a.group_id.localeCompare(b.group_id));
  const desc = await Promise.all(groups.map((g) => api("GET", "/groups/" + encodeURIComponent(g.group_id)).catch(() => null)));
  fillTbody($("groups-table"), groups.map((g, i) => el("tr", { dataset: { group: g.group_id }, class: state.openGroup === g.group_id ? "sel" : "" },
    el("td", {}, el("a", { href: "#", class: "group-link", onclick: (e) => { e.preventDefault(); state.openGroup = g.group_id; renderGroups().catch(fail); } }, g.group_id)),
    el("td", {}, el("span", { class: "pill " + g.state.toLowerCase() }, g.state)), el("td", {}, g.protocol_type || "–"),
    el("td", { class: "num" }, g.members), el("td", { class: "num lag" }, desc[i] ? desc[i].total_lag : "–"),
    el("td", { class: "actions" }, el("button", { type: "button", class: "danger", onclick: () => deleteGroup(g.group_id) }, "Delete")))), "no consumer groups");
  const det = $("group-detail");
  const idx = groups.findIndex((g) => g.group_id === state.openGroup);
  if (idx < 0 || !desc[idx]) { det.replaceChildren(); return; }
  const d = desc[idx];
  // The reset form is built once per group and kept across refreshes (what
  // the user typed stays); only the tables above it are redrawn.
  let form = det.querySelector("form");
  if (!form || form.dataset.group !== d.group_id) {
    form = el("form", { id: "reset-form", class: "box row", dataset: { group: d.group_id } },
      el("strong", {}, "Reset offsets"),
      el("label", {}, "Topic ", el("select", { id: "reset-topic", class: "topic-select" },
        state.topics.map((t) => el("option", { value: t.name }, t.name)))),
      el("label", {}, "To ", el("select", { id: "reset-to" }, ["earliest", "latest", "offset"].map((v) => el("option", { value: v }, v)))),
      el("label", {}, "Offset ", el("input", { id: "reset-offset", type: "number", min: "0", placeholder: "for 'offset'" })),
      el("label", {}, el("input", { id: "reset-dry", type: "checkbox" }), " dry run"),
      el("button", { type: "submit", id: "reset-btn" }, "Reset"),
      el("div", { class: "result", id: "reset-result" }));
    form.addEventListener("submit", (e) => resetOffsets(e, d.group_id));
    const first = d.offsets.length ? d.offsets[0].topic : null;
    if (first) form.querySelector("#reset-topic").value = first;
  }
  const info = el("div", { id: "group-info" },
    el("h2", {}, "Group ", el("code", {}, d.group_id), " ", el("span", { class: "muted small" }, `state ${d.state}, generation ${d.generation}, protocol ${d.protocol || "–"}`)),
    el("h3", {}, "Members"),
    d.members.length ? el("table", { id: "group-members" }, el("thead", {}, el("tr", {}, ["Member", "Instance", "Client", "Host"].map((h) => el("th", {}, h)))),
      el("tbody", {}, d.members.map((m) => el("tr", {}, el("td", {}, m.member_id), el("td", {}, m.instance_id ?? "–"),
        el("td", {}, m.client_id ?? "–"), el("td", {}, m.client_host ?? "–")))))
      : el("p", { class: "muted" }, "no members"),
    el("h3", {}, "Committed offsets and lag"),
    el("table", { id: "group-offsets" }, el("thead", {}, el("tr", {}, ["Topic", "Partition", "Committed", "Log end", "Lag"].map((h, i) => el("th", { class: i ? "num" : null }, h)))),
      el("tbody", {}, d.offsets.map((o) => el("tr", { dataset: { topic: o.topic, partition: o.partition } }, el("td", {}, o.topic), el("td", { class: "num" }, o.partition),
        el("td", { class: "num committed" }, o.committed_offset), el("td", { class: "num" }, o.log_end_offset ?? "–"),
        el("td", { class: "num lag" }, o.lag ?? "–"))))));
  det.replaceChildren(info, form);
}

async function resetOffsets(ev, group) {
  ev.preventDefault();
  const res = $("reset-result");
  const body = { topic: $("reset-topic").value, to: $("reset-to").value, dry_run: $("reset-dry").checked };
  if (body.to === "offset") body.offset = parseInt($("reset-offset").value, 10);
  try {
    const j = await api("POST", "/groups/" + encodeURIComponent(group) + "/offsets", body);
    showResult(res, true, (j.dry_run ? "would set " : "set ") + j.offsets.map((o) => `${j.topic}/${o.partition}: ${o.previous_offset ?? "none"} → ${o.offset}`).join(", "));
    if (!j.dry_run) await renderGroups();
  } catch (e) {
    showResult(res, false, errText(e) + (e.code === "group_not_empty" ? ": stop its consumers first" : ""));
  }
}

async function deleteGroup(g) {
  if (!confirm(`Delete consumer group "${g}" and its committed offsets?`)) return;
  try {
    await api("DELETE", "/groups/" + encodeURIComponent(g));
    if (state.openGroup === g) state.openGroup = null;
    await renderGroups();
  } catch (e) { fail(e); }
}

// ---------------------------------------------------------------- webhooks

async function renderWebhooks() {
  let j;
  try { j = await api("GET", "/event/subscriptions"); } catch (e) {
    fillTbody($("webhooks-table"), [], "webhooks unavailable here: " + errText(e));
    return;
  }
  fillTbody($("webhooks-table"), j.subscriptions.map((s) => el("tr", { dataset: { sub: s.id } },
    el("td", {}, s.id), el("td", {}, s.event_type), el("td", { class: "small" }, s.callback),
    el("td", {}, el("span", { class: "pill " + s.state }, s.state)), el("td", { class: "num lag" }, s.lag),
    el("td", { class: "num" }, s.delivered), el("td", { class: "num" }, s.failed_attempts),
    el("td", { class: "num" }, s.retries), el("td", { class: "num" }, s.dead_lettered),
    el("td", { class: "small" }, s.last_status === null ? (s.last_error || "–") : `HTTP ${s.last_status}` + (s.last_error ? ": " + s.last_error : "")),
    el("td", {}, el("button", { type: "button", class: "danger", onclick: () => deleteSub(s.id) }, "Delete")))), "no subscriptions");
}

async function deleteSub(id) {
  if (!confirm(`Delete webhook subscription "${id}"?`)) return;
  try { await api("DELETE", "/event/subscriptions/" + encodeURIComponent(id)); await renderWebhooks(); } catch (e) { fail(e); }
}

// ---------------------------------------------------------------- views and refresh

const views = {
  overview: renderOverview, topics: renderTopics, messages: renderMessages,
  groups: renderGroups, webhooks: renderWebhooks,
};

function currentView() {
  const v = location.hash.replace(/^#/, "");
  return views[v] ? v : "overview";
}

function fail(e) { banner("Error: " + errText(e)); }

let busy = false;
async function refresh(force) {
  if (busy && !force) return;
  busy = true;
  const v = currentView();
  try {
    await sampleMetrics().catch(() => {});
    if (v !== "messages" || force) await views[v]();
    banner("");
  } catch (e) {
    fail(e);
  } finally {
    busy = false;
    document.body.dataset.loaded = v; // tests wait for this
  }
}

async function header() {
  try {
    const b = await api("GET", "/broker");
    $("node-line").textContent = `node ${b.node_id} · ${b.version} · ${b.listeners.map((l) => l.protocol + " " + l.port).join(", ")}`;
  } catch (e) { $("node-line").textContent = "broker unreachable"; }
  try {
    const r = await fetch("/readyz");
    const j = await r.json();
    $("ready").textContent = j.ready ? "ready" : "not ready";
    $("ready").className = "pill " + (j.ready ? "ok" : "bad");
    $("ready").title = JSON.stringify(j.checks);
  } catch (e) { $("ready").textContent = "?"; }
}

function show() {
  const v = currentView();
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + v;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === v);
  delete document.body.dataset.loaded;
  refresh(true);
}

function init() {
  $("create-topic-form").addEventListener("submit", createTopic);
  $("publish-form").addEventListener("submit", publish);
  $("browse-form").addEventListener("submit", (e) => {
    e.preventDefault();
    readRecords(Math.max(0, parseInt($("browse-offset").value, 10) || 0)).catch(fail);
  });
  $("browse-topic").addEventListener("change", async () => {
    state.browse = { topic: $("browse-topic").value, partition: 0, offset: null };
    renderMessages().catch(fail);
  });
  $("browse-partition").addEventListener("change", () => {
    state.browse.partition = parseInt($("browse-partition").value, 10);
    state.browse.offset = null;
    renderMessages().catch(fail);
  });
  $("browse-earliest").addEventListener("click", () => browseEdge("earliest").catch(fail));
  $("browse-latest").addEventListener("click", () => browseEdge("latest").catch(fail));
  $("browse-next").addEventListener("click", () => { if (state.browse.next !== null) readRecords(state.browse.next).catch(fail); });
  $("browse-prev").addEventListener("click", () => {
    const max = parseInt($("browse-max").value, 10) || 50;
    const lo = state.browse.info ? state.browse.info.log_start_offset : 0;
    readRecords(Math.max(lo, (state.browse.offset || 0) - max)).catch(fail);
  });
  for (const r of document.querySelectorAll('input[name="fmt"]')) r.addEventListener("change", drawRecords);
  window.addEventListener("hashchange", show);
  header();
  show();
  setInterval(() => refresh(false), REFRESH_MS);
  setInterval(header, 10000);
}

init();
