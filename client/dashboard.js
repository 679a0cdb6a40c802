// relive dashboard: served at /__relive/dashboard.js for the page at /__relive/. Renders
// /__relive/status and refreshes it whenever an event arrives on relive's socket (and every two
// seconds, for tabs and latencies). Everything goes into the page through textContent.

const token = document.currentScript?.dataset.token || document.querySelector("script[data-token]").dataset.token;
const $ = (id) => document.getElementById(id);

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function browserName(ua) {
  if (!ua) return "";
  const match =
    ua.match(/(Edg|OPR|Firefox|HeadlessChrome|Chrome|Version)\/(\d+)/) || [];
  const name = { Edg: "Edge", OPR: "Opera", Version: "Safari" }[match[1]] || match[1] || "browser";
  const device = /Mobile|Android|iPhone|iPad/.test(ua) ? " (mobile)" : "";
  return match[2] ? `${name} ${match[2]}${device}` : `${name}${device}`;
}

function pagePath(url) {
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return url || "?";
  }
}

// What caused an event, in words: the files, the build, the signal.
function source(event) {
  const d = event.data || {};
  switch (event.type) {
    case "reload":
    case "morph":
      return d.paths && d.paths.length ? `${d.paths.join(", ")} (${d.reason})` : d.reason;
    case "css":
    case "image":
      return (d.paths || []).join(", ");
    case "build_completed":
      return `build succeeded in ${d.duration_ms} ms`;
    case "build_error":
      return `build failed${d.code === null ? "" : ` (exit ${d.code})`} after ${d.duration_ms} ms`;
    case "message":
      return d.text;
    case "upstream_status":
      return `${d.status}${d.url ? ` ${d.url}` : ""}${d.detail ? `: ${d.detail}` : ""}`;
    case "preview_ready":
      return d.url;
    case "upstream_exited":
      return d.detail;
    case "loop_stopped":
      return `${(d.paths || []).join(", ")} changed with every ${d.cause === "build" ? "build" : "page load"}: held back (${d.fix})`;
    default:
      return "";
  }
}

function render(status) {
  $("serving").textContent = `${status.version} · ${status.serving} · up ${Math.round(status.uptime_ms / 1000)} s`;

  const upstream = status.upstream;
  if (upstream) {
    const box = $("upstream");
    box.textContent = "";
    const state = document.createElement("span");
    state.className = `state ${upstream.status}`;
    state.textContent = upstream.status;
    box.append(state, ` ${upstream.url || ""}`);
    if (upstream.command) {
      const command = document.createElement("code");
      command.textContent = upstream.command;
      box.append(" · ", command);
    }
    if (upstream.exit) box.append(` · ${upstream.exit}`);
    $("output").hidden = !(upstream.output && upstream.output.length);
    $("output").textContent = (upstream.output || []).join("\n");
  }

  const tabs = (status.tabs || []).filter((t) => !(t.url || "").includes("/__relive/"));
  const body = $("tabs");
  body.textContent = "";
  for (const tab of tabs) {
    const row = document.createElement("tr");
    cell(row, tab.url ? pagePath(tab.url) : "(loading)");
    cell(row, browserName(tab.user_agent));
    cell(row, tab.viewport || "–");
    cell(row, tab.rtt_ms === null || tab.rtt_ms === undefined ? "–" : `${tab.rtt_ms} ms`);
    row.title = tab.url || "";
    body.append(row);
  }
  $("no-tabs").hidden = tabs.length > 0;
  syncOn = Boolean(status.sync);
  $("sync").textContent = syncOn ? `sync on · ${tabs.length} devices` : "sync off";
  $("sync").setAttribute("aria-pressed", String(syncOn));

  const counters = $("counters");
  counters.textContent = "";
  const names = {
    reloads: "reloads",
    morphs: "page updates",
    pages_morphed: "tabs morphed",
    morph_fallbacks: "tabs reloaded instead",
    css_swaps: "CSS swaps",
    image_swaps: "image swaps",
    builds: "builds",
    build_failures: "build failures",
    messages: "messages",
    dev_server_exits: "dev server exits",
  };
  for (const [key, label] of Object.entries(names)) {
    const box = document.createElement("div");
    const value = document.createElement("b");
    value.textContent = String(status.counters?.[key] ?? 0);
    box.append(value, label);
    box.dataset.counter = key;
    counters.append(box);
  }

  const events = $("events");
  events.textContent = "";
  for (const event of [...(status.events || [])].reverse()) {
    const row = document.createElement("tr");
    row.dataset.type = event.type;
    cell(row, new Date(event.timestamp).toLocaleTimeString());
    cell(row, event.type);
    cell(row, source(event));
    events.append(row);
  }

  const watching = $("watching");
  watching.textContent = "";
  if (status.watching) {
    const w = status.watching;
    const lines = [
      `paths: ${w.paths.join(", ")}`,
      `ignoring: ${[...w.ignore, ...w.builtin_ignore].join(", ")}`,
      `${w.poll ? "polling" : "OS notifications"}, debounce ${w.debounce_ms} ms`,
    ];
    for (const line of lines) {
      const div = document.createElement("div");
      div.textContent = line;
      watching.append(div);
    }
  } else {
    watching.textContent = "nothing";
  }
}

let refreshing = null;
async function refresh() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const response = await fetch("/__relive/status", { cache: "no-store" });
      render(await response.json());
    } catch (error) {
      console.warn("[relive dashboard]", error);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function setConnection(state, text) {
  $("connection").className = `state ${state}`;
  $("connection").textContent = text;
}

// The devices' controls: mirroring on or off, reload all, open one path on all.
let syncOn = false;
let live = null;
function command(message) {
  if (live && live.readyState === WebSocket.OPEN) live.send(JSON.stringify(message));
}
$("sync").addEventListener("click", () => command({ type: "sync_toggle", on: !syncOn }));
$("reload-all").addEventListener("click", () => command({ type: "command", command: "reload" }));
$("navigate-all").addEventListener("submit", (event) => {
  event.preventDefault();
  const path = $("navigate-url").value.trim();
  if (path.startsWith("/") && !path.startsWith("//")) {
    command({ type: "command", command: "navigate", url: path });
  }
});

let retryMs = 500;
function connect() {
  const url = new URL("/__relive/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", token);
  const socket = new WebSocket(url);
  live = socket;
  socket.onopen = () => {
    retryMs = 500;
    setConnection("live", "live");
    socket.send(JSON.stringify({ type: "page", url: location.href, user_agent: navigator.userAgent }));
  };
  socket.onmessage = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.type === "ping") {
      socket.send(JSON.stringify({ type: "pong", sent: event.data.sent }));
      return;
    }
    const noisy = ["upstream_output", "build_progress", "sync", "navigate"];
    if (!noisy.includes(event.type)) refresh();
  };
  socket.onclose = () => {
    setConnection("offline", "relive is not running (retrying)");
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };
}

refresh();
setInterval(refresh, 2000);
connect();
