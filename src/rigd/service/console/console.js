// The rigd console: everything through the daemon's documented REST API
// (/docs), the event stream /v1/events and the preview WebSocket /v1/preview.
// The token is asked once and kept in this tab's sessionStorage.
"use strict";

const KEY = "rigd-token";
const WINDOW_S = 300;          // the plots' span
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(KEY);
let socket = null;
let meta = null;               // the last frame's description
let lut = null;
const series = { rate: {}, drops: {}, fill: {}, latency: {} };
let samples = 0;
let eventsAbort = null;
// Read by the tests and the benchmark: the latest frame drawn and latencies.
window.rigdConsole = { framesDrawn: 0, frameId: null, latencies: [], plotSamples: 0, axes: {} };

// -- REST ------------------------------------------------------------------------------

// What the page says when rigd does not answer at all (the browser's own words
// are "Failed to fetch").
function notAnswering() {
  return `rigd is not answering at ${location.origin}: it stopped (a 'rigd run --console' ` +
    "ends with its run) or the network is down; this page follows it again when it is back";
}

async function api(method, path, body, type) {
  const headers = { Authorization: "Bearer " + token };
  if (body !== undefined) headers["Content-Type"] = type || "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers,
      body: body === undefined ? undefined : (typeof body === "string" ? body : JSON.stringify(body)),
    });
  } catch (failure) {
    const error = new Error(notAnswering());
    error.status = 0;
    throw error;
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!response.ok) {
    const error = new Error((data && data.detail) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function say(text, isError) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

async function act(what, call) {
  try {
    const result = await call();
    say(what + ": done");
    await refresh();
    return result;
  } catch (error) {
    say(what + ": " + error.message, true);
    if (error.status === 401) logout("the token was refused");
    return null;
  }
}

// -- the token -------------------------------------------------------------------------

async function login(candidate) {
  token = candidate;
  try {
    await api("GET", "/v1/status");
  } catch (error) {
    token = null;
    sessionStorage.removeItem(KEY);
    $("login-error").textContent = error.status === 401
      ? "wrong token: the daemon refused it (use the one in its token file)"
      : "the daemon did not answer: " + error.message;
    return;
  }
  sessionStorage.setItem(KEY, candidate);
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  start();
}

function logout(why) {
  sessionStorage.removeItem(KEY);
  token = null;
  if (socket) socket.close();
  if (eventsAbort) eventsAbort.abort();
  $("app").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("login-error").textContent = why || "";
}

// -- state, pipelines, runs ------------------------------------------------------------

async function refresh() {
  const status = await api("GET", "/v1/status");
  $("state").textContent = status.state;
  $("state").className = "badge " + status.state;
  $("pipeline-name").textContent = status.pipeline ? "pipeline " + status.pipeline : "no pipeline";
  $("run-name").textContent = status.run ? "run " + status.run.run_id + " (" + status.run.state + ")" : "";
  const rows = Object.entries(status.actors || {}).map(([name, a]) =>
    `<tr><td>${esc(name)}</td><td>${esc(a.state)}</td><td>pid ${a.pid}</td><td>${a.restarts || 0} restarts</td></tr>`);
  $("actors").innerHTML = "<tr><th>actor</th><th>state</th><th></th><th></th></tr>" + rows.join("");
  await refreshRuns();
}

async function refreshRuns() {
  const runs = await api("GET", "/v1/runs");
  const rows = runs.slice().reverse().slice(0, 30).map((run) => {
    const frames = Object.entries(run.frames || {}).map(([s, n]) => `${esc(s)}: ${n}`).join(", ");
    const done = !["starting", "running", "stopping"].includes(run.state);
    const links = done ? run.files.map((f, i) =>
      `<a href="#" data-run="${esc(run.run_id)}" data-index="${i}" class="download">download</a> ` +
      `<a href="#" data-run="${esc(run.run_id)}" data-index="${i}" class="inspect">inspect</a>`).join(" ") : "";
    return `<tr><td>${esc(run.run_id)}</td><td>${esc(run.state)}</td><td>${frames}</td><td>${links}</td></tr>`;
  });
  $("runs").innerHTML = "<tr><th>run</th><th>state</th><th>frames</th><th>file</th></tr>" + rows.join("");
}

async function download(runId, index) {
  const response = await fetch(`/v1/runs/${encodeURIComponent(runId)}/files/${index}`,
    { headers: { Authorization: "Bearer " + token } });
  if (!response.ok) { say("download: " + (await response.json()).detail, true); return; }
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url; a.download = runId + ".h5"; a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function inspect(runId, index) {
  try {
    const answer = await api("GET", `/v1/runs/${encodeURIComponent(runId)}/files/${index}/summary`);
    $("inspect").textContent = answer.text;
  } catch (error) { say("inspect: " + error.message, true); }
}

async function loadPipelines() {
  const list = await api("GET", "/v1/pipelines");
  $("pipelines").innerHTML = list.map((p) => `<option>${esc(p.name)}</option>`).join("");
  // Pause and resume appear once the API has them.
  const openapi = await (await fetch("/openapi.json")).json();
  const paths = Object.keys(openapi.paths || {});
  $("pause").hidden = !paths.includes("/v1/runs/current/pause");
  $("resume").hidden = !paths.includes("/v1/runs/current/resume");
}

// -- events and plots ------------------------------------------------------------------

async function followEvents() {
  eventsAbort = new AbortController();
  try {
    const response = await fetch("/v1/events", {
      headers: { Authorization: "Bearer " + token }, signal: eventsAbort.signal });
    if (response.status === 401) { logout("the token was refused"); return; }
    if ($("message").textContent === notAnswering()) say("rigd answers again");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = chunk.split("\n").filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5)).join("\n");
        if (data) onEvent(JSON.parse(data));
      }
    }
  } catch (error) {
    if (error.name === "AbortError") return;
  }
  if (!token) return;
  say(notAnswering(), true);
  setTimeout(followEvents, 2000);  // the daemon restarted: follow it again
}

function onEvent(event) {
  if (event.type === "progress") { addProgress(event); return; }
  const item = document.createElement("li");
  const what = event.type === "state" ? `${event.previous || ""} -> ${event.state}`
    : event.type === "run" ? `run ${event.run.run_id} ${event.run.state}`
    : event.type === "status" ? `state ${event.state}`
    : event.type === "disk" ? (event.warning || `${(event.free_bytes / 1e9).toFixed(1)} GB free`)
    : event.type === "trigger" ? `label ${JSON.stringify(event.label)}`
    : JSON.stringify(event).slice(0, 160);
  item.textContent = `${(event.time || "").slice(11, 23)} ${event.type}: ${what}`;
  $("events").prepend(item);
  while ($("events").children.length > 200) $("events").lastChild.remove();
  if (event.type !== "status") refresh().catch(() => {});
}

function addProgress(event) {
  const t = Date.parse(event.time) / 1000;
  const m = event.metrics || {};
  const add = (plot, name, value) => {
    const line = (series[plot][name] = series[plot][name] || []);
    line.push([t, value]);
    while (line.length && line[0][0] < t - WINDOW_S) line.shift();
  };
  for (const s of m.rigd_link_rate_hz || []) add("rate", s.labels.link, s.value);
  for (const s of m.rigd_link_fill_ratio || []) add("fill", s.labels.link, 100 * s.value);
  for (const s of m.rigd_link_frames_dropped || []) add("drops", `${s.labels.link} ${s.labels.reader}`, s.value);
  for (const s of m.rigd_link_wake_latency_p50_seconds || [])
    add("latency", `${s.labels.link} ${s.labels.reader}`, 1000 * s.value);
  samples += 1;
  const first = Math.min(...Object.values(series.rate).flat().map((p) => p[0]), t);
  $("plot-span").textContent = (t - first).toFixed(0);
  window.rigdConsole.plotSamples = samples;
  $("plot-samples").textContent = samples;
  drawPlot($("plot-rate"), series.rate, "rate (frames/s)");
  drawPlot($("plot-drops"), series.drops, "dropped (frames)");
  drawPlot($("plot-fill"), series.fill, "ring fill (%)");
  drawPlot($("plot-latency"), series.latency, "reader latency p50 (ms)");
}

const COLOURS = ["#2f5fb3", "#d1495b", "#1a7f37", "#b7791f", "#7b2cbf", "#00798c", "#555"];

function drawPlot(canvas, lines, title) {
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 48, R = 8, T = 16, B = 16;
  g.clearRect(0, 0, W, H);
  const all = Object.values(lines).flat();
  if (!all.length) return;
  const now = Math.max(...all.map((p) => p[0]));  // the daemon's clock, not this one's
  // The span: from the oldest sample kept (at most WINDOW_S ago) to now.
  const span = Math.max(10, Math.min(WINDOW_S, now - Math.min(now, ...all.map((p) => p[0]))));
  // All zero (no drops yet): an axis of 0 to 1, not of 0 to 1.1e-9.
  const top = Math.max(...all.map((p) => p[1]));
  const hi = top > 0 ? top * 1.1 : 1;
  window.rigdConsole.axes[title] = hi;
  g.fillStyle = "#222"; g.font = "11px sans-serif";
  g.fillText(title, L, 11);
  g.fillText(fmt(hi), 2, T + 8); g.fillText("0", 2, H - B);
  g.fillText(`-${span.toFixed(0)} s`, L, H - 3); g.fillText("now", W - 30, H - 3);
  g.strokeStyle = "#ccc"; g.strokeRect(L, T, W - L - R, H - T - B);
  Object.entries(lines).forEach(([name, points], i) => {
    g.strokeStyle = COLOURS[i % COLOURS.length];
    g.beginPath();
    points.forEach(([t, v], j) => {
      const x = L + (W - L - R) * (1 - (now - t) / span);
      const y = H - B - (H - T - B) * (v / hi);
      if (j) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
    g.fillStyle = g.strokeStyle;
    g.fillText(name, W - R - 220, T + 12 + 12 * i);
  });
}

function fmt(v) { return Math.abs(v) >= 1000 ? v.toExponential(1) : v.toPrecision(3); }

// -- the live view ---------------------------------------------------------------------

const MAPS = {
  gray: [[0, 0, 0], [255, 255, 255]],
  hot: [[0, 0, 0], [230, 0, 0], [255, 210, 0], [255, 255, 255]],
  jet: [[0, 0, 131], [0, 60, 170], [5, 255, 255], [255, 255, 0], [250, 0, 0], [128, 0, 0]],
  viridis: [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
};

function makeLut(name) {
  const stops = MAPS[name] || MAPS.gray;
  const table = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(x)), f = x - k;
    for (let c = 0; c < 3; c++) table[3 * i + c] = stops[k][c] + f * (stops[k + 1][c] - stops[k][c]);
  }
  return table;
}

function previewSettings() {
  const auto = $("auto-contrast").checked;
  const settings = {
    fps: Math.max(1, Math.min(60, Number($("fps").value) || 10)),
    contrast: auto ? "auto" : [Number($("cmin").value), Number($("cmax").value)],
  };
  if ($("stream").value) settings.stream = $("stream").value;
  return settings;
}

function sendSettings(extra) {
  if (socket && socket.readyState === WebSocket.OPEN)
    socket.send(JSON.stringify(Object.assign(previewSettings(), extra || {})));
}

function openPreview() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(scheme + location.host + "/v1/preview");
  socket.binaryType = "blob";
  socket.onopen = () => socket.send(JSON.stringify(Object.assign({ token }, previewSettings())));
  socket.onmessage = async (message) => {
    if (typeof message.data === "string") {
      const data = JSON.parse(message.data);
      if (data.type === "frame") { meta = data; updateStreams(data.streams, data.stream); }
      else if (data.type === "idle") {
        updateStreams(data.streams, null);
        $("preview-message").textContent = data.detail;
      } else if (data.type === "error") {
        $("preview-message").textContent = data.detail;
        $("preview-message").className = "error";
      }
      return;
    }
    if (!meta) return;
    const frame = meta;
    const bitmap = await createImageBitmap(message.data);
    draw(bitmap, frame);
    // Drawn: the daemon sends the next (at most two are ever in flight).
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ ack: frame.seq }));
  };
  socket.onclose = (event) => {
    if (event.code === 4401) {
      $("preview-message").textContent = "live view refused: " + event.reason;
      $("preview-message").className = "error";
      return;
    }
    if (token) setTimeout(openPreview, 2000);
  };
}

function updateStreams(streams, current) {
  const select = $("stream");
  const names = Array.from(select.options).map((o) => o.value);
  if ((streams || []).join() !== names.join()) {
    select.innerHTML = (streams || []).map((s) => `<option>${esc(s)}</option>`).join("");
  }
  if (current && select.value !== current) select.value = current;
}

function draw(bitmap, frame) {
  const view = $("view");
  if (view.width !== bitmap.width || view.height !== bitmap.height) {
    view.width = bitmap.width; view.height = bitmap.height;
  }
  const g = view.getContext("2d", { willReadFrequently: true });
  g.drawImage(bitmap, 0, 0);
  const image = g.getImageData(0, 0, view.width, view.height);
  const px = image.data;
  lut = lut || makeLut($("colormap").value);
  for (let i = 0; i < px.length; i += 4) {
    const v = px[i] * 3;
    px[i] = lut[v]; px[i + 1] = lut[v + 1]; px[i + 2] = lut[v + 2];
  }
  g.putImageData(image, 0, 0);
  $("preview-message").textContent = "";
  $("frame-id").textContent = frame.frame_id;
  $("frame-time").textContent = new Date(frame.timestamp_ns / 1e6).toISOString().slice(11, 23);
  $("pixel").textContent = frame.cursor_value === null ? "-" : String(frame.cursor_value);
  const latency = Date.now() - frame.timestamp_ns / 1e6;
  $("latency").textContent = latency.toFixed(0);
  const state = window.rigdConsole;
  state.framesDrawn += 1;
  state.frameId = frame.frame_id;
  state.latencies.push(latency);
  if (state.latencies.length > 1000) state.latencies.shift();
  drawHistogram(frame);
}

function drawHistogram(frame) {
  const canvas = $("histogram"), g = canvas.getContext("2d");
  const counts = frame.histogram.counts, W = canvas.width, H = canvas.height - 12;
  const top = Math.max(1, ...counts);
  g.clearRect(0, 0, W, canvas.height);
  g.fillStyle = "#2f5fb3";
  const w = W / counts.length;
  counts.forEach((c, i) => {
    const h = H * Math.log1p(c) / Math.log1p(top);
    g.fillRect(i * w, H - h, Math.max(1, w - 1), h);
  });
  g.fillStyle = "#222"; g.font = "10px sans-serif";
  g.fillText(fmt(frame.histogram.min), 0, canvas.height - 1);
  g.fillText(fmt(frame.histogram.max), W - 50, canvas.height - 1);
  // The contrast window, over the histogram.
  const span = frame.histogram.max - frame.histogram.min || 1;
  g.strokeStyle = "#d1495b";
  for (const c of frame.contrast) {
    const x = W * (c - frame.histogram.min) / span;
    g.beginPath(); g.moveTo(x, 0); g.lineTo(x, H); g.stroke();
  }
}

function onCursor(event) {
  if (!meta) return;
  const view = $("view"), box = view.getBoundingClientRect();
  const x = Math.floor(((event.clientX - box.left) / box.width) * view.width) * meta.step;
  const y = Math.floor(((event.clientY - box.top) / box.height) * view.height) * meta.step;
  sendSettings({ cursor: [x, y] });
}

// -- wiring ----------------------------------------------------------------------------

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function start() {
  refresh().catch((e) => say(e.message, true));
  loadPipelines().catch((e) => say(e.message, true));
  followEvents();
  openPreview();
}

$("login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("token").value.trim()); });
$("logout").addEventListener("click", () => logout(""));
$("load").addEventListener("click", () =>
  act("load", () => api("PUT", "/v1/pipeline", { file: $("pipelines").value })));
$("pipeline-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (file) await act("load " + file.name, async () => api("PUT", "/v1/pipeline", await file.text(), "application/yaml"));
});
$("start").addEventListener("click", () => {
  let metadata = {};
  const text = $("metadata").value.trim();
  if (text) {
    try { metadata = JSON.parse(text); } catch (e) { say("metadata is not JSON: " + e.message, true); return; }
  }
  const body = { metadata };
  if ($("run-id").value.trim()) body.run_id = $("run-id").value.trim();
  act("start", () => api("POST", "/v1/runs", body));
});
$("stop").addEventListener("click", () => act("stop", () => api("POST", "/v1/runs/current/stop")));
$("pause").addEventListener("click", () => act("pause", () => api("POST", "/v1/runs/current/pause")));
$("resume").addEventListener("click", () => act("resume", () => api("POST", "/v1/runs/current/resume")));
$("runs").addEventListener("click", (e) => {
  const a = e.target.closest("a");
  if (!a) return;
  e.preventDefault();
  (a.classList.contains("download") ? download : inspect)(a.dataset.run, Number(a.dataset.index));
});
for (const id of ["fps", "auto-contrast", "cmin", "cmax", "stream"])
  $(id).addEventListener("change", () => sendSettings());
$("colormap").addEventListener("change", () => { lut = makeLut($("colormap").value); });
$("view").addEventListener("mousemove", onCursor);

// Leaving the page ends the live view at once (a page kept in the back-forward
// cache would otherwise keep its socket, and the daemon its tap).
window.addEventListener("pagehide", () => { if (socket) { socket.onclose = null; socket.close(); } });
window.addEventListener("pageshow", (e) => { if (e.persisted && token) openPreview(); });

if (token) login(token); else $("token").focus();
