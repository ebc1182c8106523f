// The live dashboard at /: charts, mood, subsystems, processes, stimulus and engine controls over the JS client.
import uPlot from "./vendor/uplot/uPlot.esm.js";
import { DawnClient } from "./dawn-client.js";
import { parameterFields, readForm } from "./schema-form.js";

const MEASURES = ["scup", "entropy", "neural_activity", "consciousness_unity"];
const WINDOW_S = 180; // seconds of history the charts show
const MOOD_COLOURS = {
  dormant: "#4b5563", awakening: "#a3e635", curious: "#38bdf8", contemplative: "#818cf8", excited: "#f97316",
  serene: "#34d399", melancholic: "#6366f1", euphoric: "#facc15", anxious: "#f43f5e", confused: "#c084fc",
  chaotic: "#ef4444",
};
const $ = (id) => document.getElementById(id);
const text = (id, value) => { const el = $(id); if (el.textContent !== value) el.textContent = value; };

const client = new DawnClient("/ws");
const series = { x: [], ...Object.fromEntries(MEASURES.map((m) => [m, []])) };
const moods = []; // [timestamp, mood]
const arrivals = [];
const charts = {};
let dirty = false;

function makeChart(measure) {
  const el = $(`chart-${measure}`);
  const range = measure === "scup" ? [0, 100] : [0, 1];
  return new uPlot({
    width: el.clientWidth || 300, height: 120, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: true }, y: { range: () => range } },
    axes: [{ stroke: "#8b93a7", grid: { stroke: "#1f2533" }, ticks: { stroke: "#1f2533" } },
      { stroke: "#8b93a7", grid: { stroke: "#1f2533" }, ticks: { stroke: "#1f2533" }, size: 40 }],
    series: [{}, { stroke: "#7dd3fc", width: 1.5, fill: "rgba(125, 211, 252, 0.08)" }],
  }, [[], []], el);
}

function addTick(tick) {
  const xs = series.x;
  if (xs.length && tick.timestamp <= xs[xs.length - 1]) return; // history and live overlap: keep one
  xs.push(tick.timestamp);
  for (const m of MEASURES) series[m].push(tick[m]);
  const cutoff = tick.timestamp - WINDOW_S;
  while (xs.length && xs[0] < cutoff) { xs.shift(); for (const m of MEASURES) series[m].shift(); }
  if (!moods.length || moods[moods.length - 1][1] !== tick.mood) moods.push([tick.timestamp, tick.mood]);
  while (moods.length > 1 && moods[1][0] < cutoff) moods.shift();
  dirty = true;
}

function renderMoods(now) {
  const strip = $("mood-timeline");
  const start = now - WINDOW_S;
  strip.replaceChildren(...moods.map(([t, mood], i) => {
    const until = i + 1 < moods.length ? moods[i + 1][0] : now;
    const seg = document.createElement("span");
    seg.style.flexGrow = String(Math.max(0, until - Math.max(t, start)));
    seg.style.background = MOOD_COLOURS[mood] || "#9ca3af";
    seg.title = mood;
    return seg;
  }));
}

function renderSubsystems(tick) {
  const rows = Object.entries(tick.subsystems || {}).map(([name, values]) => {
    const row = document.createElement("div");
    row.className = "subsystem";
    row.innerHTML = `<h3></h3><dl></dl>`;
    row.querySelector("h3").textContent = name;
    row.querySelector("dl").append(...Object.entries(values).flatMap(([k, v]) => {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = typeof v === "number" ? v.toFixed(3) : String(v);
      return [dt, dd];
    }));
    return row;
  });
  $("subsystems").replaceChildren(...rows);
}

function render() {
  if (dirty) {
    for (const m of MEASURES) charts[m].setData([series.x, series[m]]);
    const last = client.ticks[client.ticks.length - 1];
    if (last) {
      text("mood", last.mood);
      $("mood").style.color = MOOD_COLOURS[last.mood] || "";
      renderMoods(last.timestamp);
      renderSubsystems(last);
      text("memory_pressure", last.memory_pressure.toFixed(3));
      text("active-processes", last.active_processes.length ? last.active_processes.join(", ") : "none");
      text("tick-number", String(last.tick_number));
    }
    dirty = false;
  }
  // the figures move every frame: interpolated one tick behind, briefly extrapolated when a tick is late
  for (const m of MEASURES) {
    const v = client.sample(m);
    if (v !== null) text(`v-${m}`, v.toFixed(m === "scup" ? 1 : 3));
  }
  requestAnimationFrame(render);
}

function renderStatus() {
  const conn = $("conn");
  conn.textContent = client.state;
  conn.dataset.state = client.state;
  const now = performance.now();
  while (arrivals.length && arrivals[0] < now - 5000) arrivals.shift();
  text("tick-rate", arrivals.length > 1 ? `${(arrivals.length / 5).toFixed(1)} Hz` : "–");
  text("latency", client.latency === null ? "–" : `${Math.max(0, client.latency).toFixed(0)} ms`);
  text("reconnects", String(client.reconnects));
  text("clients", client.clients === null ? "–" : String(client.clients));
  text("protocol", client.protocol || "–");
}

function say(id, message, kind = "") {
  const el = $(id);
  el.textContent = message;
  el.dataset.kind = kind;
}

const NEEDS_AUTHORITY = new Set(["unauthorised", "forbidden"]);

function setupStimulus() {
  const form = $("stimulus-form");
  form.intensity.addEventListener("input", () => { $("intensity-out").textContent = Number(form.intensity.value).toFixed(2); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const kind = form.kind.value, intensity = Number(form.intensity.value);
    say("stimulus-status", `${kind} ${intensity.toFixed(2)} sent…`, "pending");
    try {
      const ack = await client.stimulus(kind, intensity);
      say("stimulus-status", `${kind} ${intensity.toFixed(2)} applied at tick ${ack.tick_number}`, "ok");
    } catch (error) {
      const message = NEEDS_AUTHORITY.has(error.code)
        ? `Sending stimuli needs authority: sign in with a user allowed to (${error.code}).`
        : `Not applied: ${error.message} (${error.code || "error"})`;
      say("stimulus-status", message, NEEDS_AUTHORITY.has(error.code) ? "authority" : "error");
    }
  });
}

// ---- engine control: pause, resume, step N ticks while paused, set the rate

function showEngine({ paused, tick_rate: rate }) {
  text("engine-state", `${paused ? "paused" : "running"} · ${rate === null ? "unthrottled" : `${rate} Hz`}`);
  $("engine-state").dataset.paused = String(paused);
}

function setupControl() {
  const form = $("control-form");
  form.addEventListener("click", async (event) => {
    const action = event.target.dataset && event.target.dataset.action;
    if (!action) return;
    const fields = action === "step" ? { ticks: Number(form.ticks.value) }
      : action === "rate" ? { rate: Number(form.rate.value) } : {};
    say("control-status", `${action} sent…`, "pending");
    try {
      const done = await client.control(action, fields);
      say("control-status", `${action} applied after tick ${done.tick_number}`, "ok");
    } catch (error) {
      const message = NEEDS_AUTHORITY.has(error.code)
        ? `Controlling the engine needs authority: sign in with a user allowed to (${error.code}).`
        : `Not applied: ${error.message} (${error.code || "error"})`;
      say("control-status", message, NEEDS_AUTHORITY.has(error.code) ? "authority" : "error");
    }
  });
  client.addEventListener("connection", (event) => showEngine(event.detail));
  client.addEventListener("control", (event) => showEngine(event.detail)); // anyone's command, any worker
}

// ---- processes: one form per script from its parameter schema, the runs with live output and pictures

const runs = new Map(); // process_id -> element

function runElement(run) {
  let el = runs.get(run.process_id);
  if (!el) {
    el = document.createElement("li");
    el.className = "run";
    el.dataset.processId = run.process_id;
    el.innerHTML = `<header><b class="name"></b> <span class="badge"></span> <span class="meta"></span></header>
      <pre class="output"></pre><p class="analysis"></p><img class="picture" alt="" hidden>`;
    runs.set(run.process_id, el);
    $("runs").prepend(el);
    while ($("runs").children.length > 12) { const old = $("runs").lastElementChild; runs.delete(old.dataset.processId); old.remove(); }
  }
  return el;
}

function showRun(run) {
  const el = runElement(run);
  el.querySelector(".name").textContent = run.process_id;
  const badge = el.querySelector(".badge");
  badge.textContent = run.status;
  badge.dataset.status = run.status;
  el.querySelector(".meta").textContent = run.trigger ? `· ${run.trigger}` : "";
  const analysis = run.output && run.output.analysis;
  el.querySelector(".analysis").textContent = analysis || (run.reason ? `reason: ${run.reason}` : "");
  const picture = el.querySelector(".picture");
  const url = run.visualization_url || (run.output && run.output.visualization ? `/api/runs/${run.id}/visualization.png` : null);
  if (url && picture.getAttribute("src") !== url) {
    picture.src = url;
    picture.alt = `picture of ${run.process_id}`;
    picture.hidden = false;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function startRun(name, form) {
  let parameters;
  try {
    parameters = readForm(form);
  } catch (error) {
    say("run-status", error.message, "error");
    return;
  }
  say("run-status", `starting ${name}…`, "pending");
  const response = await fetch("/api/runs/", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify({ script: name, parameters }),
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 || response.status === 403) {
    say("run-status", `Starting runs needs authority: sign in with a user allowed to (HTTP ${response.status}).`, "authority");
  } else if (!response.ok) {
    say("run-status", `${name} refused (HTTP ${response.status}): ${JSON.stringify(body)}`, "error");
  } else {
    say("run-status", `${body.process_id} queued`, "ok");
    showRun(body);
  }
}

async function setupProcesses() {
  const catalogue = await (await fetch("/api/processes/")).json();
  const forms = catalogue.processes.map((process) => {
    const details = document.createElement("details");
    details.className = "script";
    details.innerHTML = `<summary><b></b> <span class="hint"></span></summary><form></form>`;
    details.querySelector("b").textContent = process.name;
    details.querySelector(".hint").textContent = process.description;
    const form = details.querySelector("form");
    form.dataset.script = process.name;
    form.append(...parameterFields(process.parameters));
    const button = document.createElement("button");
    button.type = "submit";
    button.textContent = `Start ${process.name}`;
    form.append(button);
    form.addEventListener("submit", (event) => { event.preventDefault(); startRun(process.name, form); });
    return details;
  });
  $("scripts").replaceChildren(...forms);
  const recent = await (await fetch("/api/runs/?page_size=8")).json();
  for (const run of (recent.results || []).reverse()) showRun(run);
}

client.addEventListener("tick", (event) => { arrivals.push(performance.now()); addTick(event.detail); });
let filled = false;
client.addEventListener("connection", async () => {
  if (filled) return; // a reconnect resumes: the charts already hold everything before it
  // fill the charts from history, so the page is never empty
  try {
    const history = await client.request({ type: "get_history", count: WINDOW_S * (client.tickRate || 10) });
    filled = true;
    const newest = history.ticks.length ? history.ticks[history.ticks.length - 1].tick_number : -1;
    series.x.length = 0;
    for (const m of MEASURES) series[m].length = 0;
    moods.length = 0;
    for (const tick of [...history.ticks, ...client.ticks.filter((t) => t.tick_number > newest)]) addTick(tick);
  } catch (error) {
    console.warn("history unavailable:", error.message);
  }
});
client.addEventListener("process", (event) => showRun(event.detail));
client.addEventListener("process_output", (event) => {
  const { process_id: id, line } = event.detail;
  const el = runs.get(id) || runElement({ process_id: id });
  const out = el.querySelector(".output");
  out.textContent = (out.textContent + line + "\n").split("\n").slice(-8).join("\n");
});
client.addEventListener("resume_failed", (event) => say("run-status", `stream restarted: ${event.detail.message}`, "error"));

for (const m of MEASURES) charts[m] = makeChart(m);
window.addEventListener("resize", () => {
  for (const m of MEASURES) charts[m].setSize({ width: $(`chart-${m}`).clientWidth, height: 120 });
});
setupStimulus();
setupControl();
setupProcesses().catch((error) => say("run-status", `processes unavailable: ${error.message}`, "error"));
client.connect();
setInterval(renderStatus, 250);
requestAnimationFrame(render);
window.dawn = { client, series }; // for the browser tests and for poking at it from the console
