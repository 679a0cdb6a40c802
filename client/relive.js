// relive browser client: served at /__relive/client.js and loaded by the one <script> tag
// relive adds to each page. It keeps a connection to relive open (a WebSocket, or an event
// stream where WebSockets are blocked), reloads the page on `reload` (keeping scroll positions
// and typed form values), updates it in place on `morph` (morph.js, joined below), swaps
// stylesheets and images in place, reconnects with backoff and
// catches up on what it missed (from the moment the page was served), shows a small status
// badge and the banner when relive stops a reload loop, and reports the page's runtime errors
// to relive's terminal.
//
// No dependencies, one global (`__relive`), never throws into the page, holds no secret (the
// connection's token is on the tag in the page).

const tag = document.querySelector("script[data-relive]");
const token = (tag && tag.dataset.token) || "";
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 3000;
const HIDDEN_RETRY_MS = 10000;
const MAX_ATTEMPTS = 10;
const WS_FAILURES_BEFORE_FALLBACK = 3;
const ERRORS_PER_WINDOW = 10;
const STATE_KEY = "relive:state";

function safely(fn, fallback) {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

const debug =
  (tag && tag.dataset.debug === "1") ||
  safely(() => localStorage.getItem("relive_debug") === "1", false);
const inFrame = window !== window.top;
// A same-origin top page with its own relive client reloads for the whole tab.
const topReloads = inFrame && safely(() => Boolean(window.top.__relive), false);
const badgeWanted =
  !inFrame &&
  !(tag && tag.dataset.badge === "off") &&
  new URLSearchParams(location.search).get("relive-badge") !== "off";

// The tag names the relive that served this page and the newest event as of then: the first
// connection asks for everything after it, and a restarted relive is noticed even when this
// page's connection never opened.
const servedLastId = tag ? Number.parseInt(tag.dataset.lastId, 10) : Number.NaN;

// The one global: state for debugging (and relive's own browser tests), and two actions.
const state = (globalThis.__relive = {
  status: "connecting", // connecting | connected | reconnecting | disconnected | reloading
  transport: "websocket", // websocket | event-stream
  session: (tag && tag.dataset.session) || null,
  lastId: Number.isNaN(servedLastId) ? null : servedLastId,
  attempts: 0,
  nextRetryMs: null,
  heartbeatMs: 30000,
  lastHeard: 0,
  rttMs: null,
  updates: 0,
  // Pages updated in place, and the last one's figures ({ changes, ms, fetch_ms }).
  morphs: 0,
  lastMorph: null,
  // Reloads are held while true (a debugging aid; relive's loop guard works on the server).
  paused: false,
  // The reload loop relive stopped, as its `loop_stopped` event says ({ paths, cause, fix }).
  loop: null,
  building: false,
  // What the overlay shows: a failed build or an exited dev server ({ title, lines }).
  buildError: null,
  upstream: null, // the dev server: pending | starting | ready | down | exited (proxy mode)
  role: inFrame ? "frame" : "top",
  retry: () => safely(retry),
  resume: () => safely(resume),
  // Debugging aids: drop the connection, and hold reconnecting while `debugHold` is true.
  debugHold: false,
  debugDrop: () => safely(() => dropConnection(true)),
});

let socket = null; // a WebSocket or an EventSource
let retryTimer = null;
let watchdog = null;
let wsFailures = 0;
let pendingReason = null;

function log(...args) {
  console.info("%c[relive]", "color:#8250df", ...args);
}

// ---------------------------------------------------------------- connection

function connectionUrl(path) {
  const url = new URL(path, location.href);
  url.search = "";
  url.hash = "";
  url.searchParams.set("token", token);
  if (state.session !== null && state.lastId !== null) {
    url.searchParams.set("session", state.session);
    url.searchParams.set("last_id", String(state.lastId));
  }
  return url;
}

function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (socket || state.status === "reloading") return;
  if (state.transport === "event-stream") openEventStream();
  else openWebSocket();
}

function openWebSocket() {
  const url = connectionUrl("/__relive/ws");
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  let ws;
  try {
    ws = new WebSocket(url);
  } catch {
    // WebSockets are refused outright here (a policy, an extension): fall back at once, even
    // in a hidden tab, rather than after a backoff meant for a lost connection.
    wsFailures = WS_FAILURES_BEFORE_FALLBACK;
    retryTimer = setTimeout(reconnect, 0);
    return;
  }
  let opened = false;
  socket = ws;
  ws.onopen = () => {
    opened = true;
    wsFailures = 0;
  };
  ws.onmessage = (message) => receive(message.data);
  ws.onclose = () => {
    if (!opened) wsFailures += 1;
    if (socket !== ws) return;
    socket = null;
    scheduleReconnect();
  };
}

function openEventStream() {
  const es = new EventSource(connectionUrl("/__relive/events"));
  socket = es;
  es.onmessage = (message) => receive(message.data);
  es.onerror = () => {
    // EventSource would retry by itself, without our resume position: take over.
    es.close();
    if (socket !== es) return;
    socket = null;
    scheduleReconnect();
  };
}

function send(message) {
  if (socket && socket instanceof WebSocket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(message));
    return true;
  }
  return false;
}

// The event stream is one-way: errors go back in a POST with the page's token.
function post(message) {
  if (!(socket instanceof EventSource) || socket.readyState !== EventSource.OPEN) return false;
  fetch("/__relive/errors", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(message),
    keepalive: true,
  }).catch(() => {});
  return true;
}

function dropConnection(reconnect) {
  const current = socket;
  socket = null;
  if (current) current.close();
  if (reconnect) scheduleReconnect();
}

function retryDelay() {
  // Exponential backoff with jitter: a quick first retry, then at most every few seconds,
  // and slowly while the tab is hidden.
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** state.attempts);
  const delay = base / 2 + Math.random() * (base / 2);
  return document.hidden ? Math.max(delay, HIDDEN_RETRY_MS) : delay;
}

function scheduleReconnect() {
  if (retryTimer !== null || state.status === "reloading") return;
  if (state.attempts >= MAX_ATTEMPTS) {
    setStatus("disconnected");
    return;
  }
  setStatus("reconnecting");
  if (state.attempts === 0) log("connection lost; reconnecting…");
  state.attempts += 1;
  state.nextRetryMs = retryDelay();
  retryTimer = setTimeout(reconnect, state.nextRetryMs);
}

// Before reopening the connection, ask relive whether it is the same process: a restarted
// relive has a new token (the one in this page no longer opens the socket) and may serve
// changed files, so the page reloads to pick up both.
async function reconnect() {
  retryTimer = null;
  if (state.debugHold) {
    retryTimer = setTimeout(reconnect, 50);
    return;
  }
  let status;
  try {
    const response = await fetch("/__relive/status", { cache: "no-store" });
    if (!response.ok) throw new Error(`status ${response.status}`);
    status = await response.json();
  } catch {
    // relive itself is unreachable: the WebSocket failures so far say nothing about it.
    wsFailures = 0;
    scheduleReconnect();
    return;
  }
  // Another relive (restarted) refuses this page's token and may serve changed files.
  if (state.session !== null && status.session_id !== state.session) {
    reload("relive restarted");
    return;
  }
  if (state.transport === "event-stream") {
    // The stream dropped: try the WebSocket once more, back to the stream if it fails again.
    state.transport = "websocket";
    wsFailures = WS_FAILURES_BEFORE_FALLBACK - 1;
  } else if (wsFailures >= WS_FAILURES_BEFORE_FALLBACK) {
    state.transport = "event-stream";
    log("WebSocket unavailable (a proxy or extension may block it); using an event stream");
  }
  connect();
}

function retry() {
  state.attempts = 0;
  clearTimeout(retryTimer);
  retryTimer = null;
  setStatus("reconnecting");
  reconnect();
}

// A connection that hears nothing (not even a ping) for two heartbeats is dead.
function startWatchdog(current) {
  clearInterval(watchdog);
  watchdog = setInterval(() => {
    if (socket !== current) return clearInterval(watchdog);
    if (Date.now() - state.lastHeard > 2 * state.heartbeatMs) {
      clearInterval(watchdog);
      dropConnection(true);
    }
  }, state.heartbeatMs);
}

// ---------------------------------------------------------------- events

function receive(data) {
  let event;
  try {
    event = JSON.parse(data);
  } catch {
    return;
  }
  if (debug) console.debug("[relive] ←", event);
  try {
    handle(event);
  } catch (error) {
    console.warn("[relive] could not apply", event.type, error);
  }
}

function handle(event) {
  state.lastHeard = Date.now();
  if (event.type !== "hello" && event.type !== "ping" && typeof event.id === "number") {
    state.lastId = event.id;
  }
  switch (event.type) {
    case "hello":
      log(state.session === null ? "connected" : "reconnected");
      state.attempts = 0;
      state.session = event.session_id;
      state.lastId = event.data.last_id;
      state.heartbeatMs = event.data.heartbeat_ms || state.heartbeatMs;
      state.upstream = event.data.upstream || null;
      setStatus("connected");
      // A waiting page that missed `preview_ready` while it loaded.
      if (waitingPage() && state.upstream === "ready") reload("the dev server is ready");
      send({
        type: "page",
        url: location.href,
        user_agent: navigator.userAgent,
        viewport: `${innerWidth}×${innerHeight}`,
      });
      syncConnected(event.data.sync);
      flushErrors();
      startWatchdog(socket);
      return;
    case "ping":
      send({ type: "pong", sent: event.data.sent });
      if (typeof event.data.rtt_ms === "number") state.rttMs = event.data.rtt_ms;
      renderBadge();
      return;
    case "reload":
      reload(event.data.reason);
      return;
    case "morph":
      morphPage(event.data);
      return;
    case "sync":
      syncReceived(event.data);
      return;
    case "sync_state":
      state.sync.on = Boolean(event.data.on);
      state.sync.devices = Number(event.data.devices) || 0;
      renderBadge();
      return;
    case "navigate":
      navigateAll(event.data.url);
      return;
    case "css":
      swapStylesheets(event.data.paths || []);
      applied();
      return;
    case "image":
      refreshImages(event.data.paths || []);
      applied();
      return;
    case "build_progress":
      if (!state.building) {
        state.building = true;
        renderBadge();
      }
      if (debug) console.debug("[relive] build │", event.data.line);
      return;
    case "build_completed":
      state.building = false;
      state.buildError = null;
      renderBadge();
      return;
    case "build_error":
      state.building = false;
      state.buildError = event.data;
      log(`build failed${event.data.code === null ? "" : ` (exit ${event.data.code})`}`);
      renderBadge();
      return;
    case "loop_stopped":
      state.loop = event.data;
      log(`stopped a reload loop: ${event.data.paths.join(", ")}; ${event.data.fix}`);
      renderBadge();
      return;
    case "message":
      log(event.data.text);
      showMessage(String(event.data.text));
      return;
    case "upstream_status":
      state.upstream = event.data.status;
      if (waitingPage()) waitingPage().dataset.state = event.data.status;
      return;
    case "preview_ready":
      if (waitingPage()) reload("the dev server is ready");
      return;
    case "upstream_output":
      appendOutput(String(event.data.line));
      return;
    case "upstream_exited": {
      const restart =
        typeof event.data.restart_in_ms === "number"
          ? ` · restarting in ${(event.data.restart_in_ms / 1000).toFixed(1)} s`
          : "";
      state.buildError = { title: `The dev server ${event.data.detail}${restart}`, lines: event.data.lines };
      log(`the dev server ${event.data.detail}`);
      renderBadge();
      return;
    }
  }
}

// relive's own "starting / waiting for the dev server" page.
function waitingPage() {
  return document.getElementById("relive-waiting");
}

const MAX_OUTPUT_LINES = 500;

// On the waiting page, the dev server's output as it arrives.
function appendOutput(line) {
  const output = waitingPage() && document.getElementById("relive-output");
  if (debug) console.debug("[relive] dev │", line);
  if (!output) return;
  const atBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
  const lineElement = document.createElement("span");
  renderAnsi(lineElement, [line]);
  output.append(lineElement);
  while (output.childNodes.length > MAX_OUTPUT_LINES) output.firstChild.remove();
  if (atBottom) output.scrollTop = output.scrollHeight;
}

function applied() {
  state.updates += 1;
  flashBadge();
}

// ---------------------------------------------------------------- reload

// Every reload asked for happens: telling a loop from a person saving is relive's job, on the
// server, which sees both the page loads and the changes (see `loop_stopped`).
function reload(reason) {
  if (topReloads) return; // the top page reloads, and this frame with it
  if (state.paused) {
    pendingReason = reason;
    return;
  }
  log(`reloading: ${reason}`);
  saveState();
  setStatus("reloading");
  location.reload();
}

function resume() {
  state.paused = false;
  renderBadge();
  if (pendingReason !== null) reload(pendingReason);
}

// ---------------------------------------------------------------- state across reloads

const editedFields = new Set();
const REMEMBERED = "input, textarea, select";
const NEVER_REMEMBERED = new Set(["password", "file", "hidden", "submit", "button", "reset", "image"]);

document.addEventListener(
  "input",
  (event) => {
    const el = event.target;
    if (el instanceof Element && el.matches(REMEMBERED) && !NEVER_REMEMBERED.has(el.type)) {
      editedFields.add(el);
    }
  },
  true,
);

function cssPath(el) {
  const parts = [];
  for (let node = el; node && node.nodeType === 1 && node !== document.documentElement; ) {
    if (node.id) {
      parts.unshift(`#${CSS.escape(node.id)}`);
      break;
    }
    let index = 1;
    for (let sib = node.previousElementSibling; sib; sib = sib.previousElementSibling) {
      if (sib.localName === node.localName) index += 1;
    }
    parts.unshift(`${node.localName}:nth-of-type(${index})`);
    node = node.parentElement;
  }
  return parts.join(" > ");
}

function scrolledContainers() {
  const found = [];
  for (const el of document.querySelectorAll("body *")) {
    if (found.length >= 5) break;
    if ((el.scrollTop > 0 || el.scrollLeft > 0) && el.scrollHeight > el.clientHeight) {
      found.push({ path: cssPath(el), x: el.scrollLeft, y: el.scrollTop });
    }
  }
  return found;
}

function saveState() {
  const fields = [...editedFields]
    .filter((el) => el.isConnected)
    .map((el) => ({
      path: cssPath(el),
      checked: el.type === "checkbox" || el.type === "radio" ? el.checked : null,
      value: el.value,
    }));
  const saved = {
    url: location.href,
    x: scrollX,
    y: scrollY,
    containers: safely(scrolledContainers, []),
    fields,
  };
  safely(() => sessionStorage.setItem(STATE_KEY, JSON.stringify(saved)));
}

function restoreState() {
  const saved = safely(() => JSON.parse(sessionStorage.getItem(STATE_KEY) || "null"), null);
  safely(() => sessionStorage.removeItem(STATE_KEY));
  if (!saved || saved.url !== location.href) return;
  const apply = () => {
    scrollTo(saved.x, saved.y);
    for (const c of saved.containers || []) {
      const el = safely(() => document.querySelector(c.path), null);
      if (el) el.scrollTo(c.x, c.y);
    }
    for (const f of saved.fields || []) {
      const el = safely(() => document.querySelector(f.path), null);
      if (!el || editedFields.has(el)) continue;
      if (f.checked !== null) el.checked = f.checked;
      else el.value = f.value;
      el.dispatchEvent(new Event("input", { bubbles: true }));
      el.dispatchEvent(new Event("change", { bubbles: true }));
    }
  };
  // Apps that render late get a second chance.
  const applyTwice = () => {
    safely(apply);
    setTimeout(() => safely(apply), 250);
  };
  if (document.readyState === "complete") applyTwice();
  else addEventListener("load", applyTwice, { once: true });
}

// ---------------------------------------------------------------- css and images

function pathname(href, base) {
  return safely(() => new URL(href, base || location.href).pathname, null);
}

function pathMatches(href, path, base) {
  const p = pathname(href, base);
  return p !== null && (p === path || path.endsWith(p) || p.endsWith(path));
}

function sameOrigin(href) {
  return safely(() => new URL(href, location.href).origin === location.origin, false);
}

function busted(href, base) {
  const url = new URL(href, base || location.href);
  url.searchParams.set("relive", String(Date.now()));
  return url.href;
}

function replaceLink(link) {
  const fresh = link.cloneNode();
  fresh.href = busted(link.href);
  link.dataset.reliveReplaced = "1";
  const done = () => link.remove();
  fresh.addEventListener("load", done, { once: true });
  fresh.addEventListener("error", done, { once: true });
  link.after(fresh);
}

// Walks same-origin style sheets (and the sheets they @import), calling visit(sheet).
function eachSheet(visit) {
  const walk = (sheet, depth) => {
    if (depth > 8) return;
    const rules = safely(() => sheet.cssRules, null); // cross-origin sheets throw
    if (!rules) return;
    visit(sheet, rules);
    for (const rule of rules) if (rule.styleSheet) walk(rule.styleSheet, depth + 1);
  };
  for (const sheet of document.styleSheets) walk(sheet, 0);
}

// Replaces each matching <link rel=stylesheet> with a cache-busted copy (the old one stays
// until the new one has loaded: no flash of unstyled content) and re-imports matching @imports.
function swapStylesheets(paths) {
  const links = [...document.querySelectorAll('link[rel~="stylesheet"][href]')].filter(
    (link) => !link.dataset.reliveReplaced,
  );
  const matching = links.filter((link) => paths.some((p) => pathMatches(link.href, p)));
  matching.forEach(replaceLink);
  let imports = 0;
  eachSheet((sheet, rules) => {
    for (let i = 0; i < rules.length; i += 1) {
      const rule = rules[i];
      if (!(rule instanceof CSSImportRule)) continue;
      const base = sheet.href || location.href;
      if (!paths.some((p) => pathMatches(rule.href, p, base))) continue;
      const media = rule.media && rule.media.mediaText ? ` ${rule.media.mediaText}` : "";
      sheet.deleteRule(i);
      sheet.insertRule(`@import url("${busted(rule.href, base)}")${media};`, i);
      imports += 1;
    }
  });
  if (matching.length === 0 && imports === 0) {
    // Nothing names the file directly (a preprocessor's output, say): refresh every
    // same-origin stylesheet, still smoother than a reload.
    links.filter((l) => sameOrigin(l.href)).forEach(replaceLink);
  }
  log(`updated stylesheets: ${paths.join(", ")}`);
}

const CSS_URL = /url\(\s*(['"]?)([^'")]+)\1\s*\)/g;

function rewriteCssUrls(text, paths, base) {
  let changed = false;
  const out = text.replace(CSS_URL, (whole, quote, url) => {
    if (!paths.some((p) => pathMatches(url, p, base))) return whole;
    changed = true;
    return `url("${busted(url, base)}")`;
  });
  return changed ? out : null;
}

function rewriteSrcset(srcset, paths) {
  let changed = false;
  const out = srcset
    .split(",")
    .map((candidate) => {
      const [url, ...descriptor] = candidate.trim().split(/\s+/);
      if (!url || !paths.some((p) => pathMatches(url, p))) return candidate.trim();
      changed = true;
      return [busted(url), ...descriptor].join(" ");
    })
    .join(", ");
  return changed ? out : null;
}

// Refreshes changed images where the page shows them: <img src/srcset>, <picture> sources,
// inline styles and same-origin stylesheet rules.
function refreshImages(paths) {
  let count = 0;
  for (const el of document.querySelectorAll("img[src], img[srcset], source[srcset]")) {
    const srcset = el.getAttribute("srcset");
    const newSrcset = srcset && rewriteSrcset(srcset, paths);
    if (newSrcset) {
      el.setAttribute("srcset", newSrcset);
      count += 1;
    }
    const src = el.getAttribute("src");
    if (src && paths.some((p) => pathMatches(src, p))) {
      el.setAttribute("src", busted(src));
      count += 1;
    }
  }
  for (const el of document.querySelectorAll('[style*="url("]')) {
    const text = el.getAttribute("style");
    const rewritten = rewriteCssUrls(text, paths, location.href);
    if (rewritten) {
      el.setAttribute("style", rewritten);
      count += 1;
    }
  }
  eachSheet((sheet, rules) => {
    const base = sheet.href || location.href;
    const visit = (list) => {
      for (const rule of list) {
        if (rule.cssRules) visit(rule.cssRules);
        if (!rule.style) continue;
        for (const property of ["background-image", "background", "mask-image", "list-style-image", "content"]) {
          const value = rule.style.getPropertyValue(property);
          const rewritten = value && rewriteCssUrls(value, paths, base);
          if (rewritten) {
            rule.style.setProperty(property, rewritten, rule.style.getPropertyPriority(property));
            count += 1;
          }
        }
      }
    };
    visit(rules);
  });
  log(`refreshed ${count} image use(s): ${paths.join(", ")}`);
}

// ---------------------------------------------------------------- runtime errors

let errorWindowStart = 0;
let errorsInWindow = 0;
const queuedErrors = [];

function reportError(kind, message, source, line, column) {
  const now = Date.now();
  if (now - errorWindowStart > 10000) {
    errorWindowStart = now;
    errorsInWindow = 0;
  }
  errorsInWindow += 1;
  if (errorsInWindow > ERRORS_PER_WINDOW) return;
  const report = fitted({
    type: "error",
    kind,
    message: String(message).slice(0, 2000),
    source: source ? String(source).slice(0, 500) : null,
    line: typeof line === "number" ? line : null,
    column: typeof column === "number" ? column : null,
    url: location.href.slice(0, 500),
  });
  if (!deliver(report) && queuedErrors.length < ERRORS_PER_WINDOW) queuedErrors.push(report);
}

// relive takes at most 4 KiB per message (a frame or a POST): shorten the text until it fits.
const MAX_MESSAGE_BYTES = 4000;
const encoder = new TextEncoder();

function fitted(report) {
  while (
    report.message.length > 0 &&
    encoder.encode(JSON.stringify(report)).length > MAX_MESSAGE_BYTES
  ) {
    report.message = report.message.slice(0, Math.floor(report.message.length / 2));
  }
  return report;
}

function deliver(message) {
  return send(message) || post(message);
}

function flushErrors() {
  while (queuedErrors.length > 0 && deliver(queuedErrors[0])) queuedErrors.shift();
}

function describe(value) {
  if (value instanceof Error) return value.stack || `${value.name}: ${value.message}`;
  if (typeof value === "string") return value;
  return safely(() => JSON.stringify(value), String(value));
}

addEventListener("error", (event) => {
  safely(() => reportError("error", event.message, event.filename, event.lineno, event.colno));
});
addEventListener("unhandledrejection", (event) => {
  safely(() => reportError("unhandledrejection", describe(event.reason)));
});
const consoleError = console.error;
console.error = function (...args) {
  safely(() => reportError("console", args.map(describe).join(" ")));
  return consoleError.apply(this, args);
};

// ---------------------------------------------------------------- badge

let badge = null;

const BADGE_STYLE = `
  :host { all: initial; }
  .badge { position: fixed; right: 10px; bottom: 10px; z-index: 2147483647; display: flex;
    align-items: center; gap: 6px; padding: 3px 8px; border-radius: 999px; font: 11px/1.4
    system-ui, sans-serif; color: #fff; background: rgba(31, 35, 40, 0.72); opacity: 0.55;
    transition: opacity 0.2s, transform 0.2s; user-select: none; }
  .badge:hover, .badge.flash, .badge.alert { opacity: 1; }
  .badge.flash { transform: scale(1.08); }
  .dot { width: 7px; height: 7px; border-radius: 50%; background: #8c959f; }
  .connected .dot { background: #2da44e; }
  .reconnecting .dot { background: #d4a72c; }
  .disconnected .dot, .paused .dot { background: #cf222e; }
  button { all: unset; cursor: pointer; padding: 0 6px; border-radius: 4px; background: #fff;
    color: #1f2328; font-weight: 600; }
  .sync { background: rgba(255, 255, 255, 0.15); color: inherit; font-weight: 500; }
  .sync[aria-pressed="true"] { background: #0969da; color: #fff; }
  .banner { position: fixed; left: 50%; bottom: 44px; transform: translateX(-50%);
    z-index: 2147483647; max-width: 32rem; padding: 10px 14px; border-radius: 8px;
    font: 13px/1.45 system-ui, sans-serif; color: #1f2328; background: #fff8c5;
    box-shadow: 0 4px 14px rgba(0, 0, 0, 0.18); display: flex; gap: 12px; align-items: center; }
  .banner button { background: #1f2328; color: #fff; padding: 4px 10px; }
  .overlay { position: fixed; inset: 0; z-index: 2147483646; display: flex; align-items:
    flex-start; justify-content: center; padding-top: 10vh; background: rgba(13, 17, 23, 0.55); }
  .panel { width: min(60rem, 92vw); max-height: 70vh; overflow: auto; border-radius: 10px;
    background: #0d1117; color: #e6edf3; box-shadow: 0 10px 40px rgba(0, 0, 0, 0.4);
    font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; }
  .panel header { display: flex; justify-content: space-between; align-items: center;
    padding: 10px 14px; background: #cf222e; color: #fff; font: 600 14px system-ui, sans-serif; }
  .panel header button { background: rgba(255, 255, 255, 0.9); }
  .panel pre { margin: 0; padding: 12px 14px; white-space: pre-wrap; word-break: break-word; }
  .fg-30 { color: #6e7681; } .fg-31 { color: #ff7b72; } .fg-32 { color: #3fb950; }
  .fg-33 { color: #d29922; } .fg-34 { color: #58a6ff; } .fg-35 { color: #bc8cff; }
  .fg-36 { color: #39c5cf; } .fg-37 { color: #e6edf3; } .bold { font-weight: 700; }
  .toast { position: fixed; right: 10px; bottom: 40px; z-index: 2147483647; max-width: 24rem;
    padding: 8px 12px; border-radius: 8px; font: 13px/1.45 system-ui, sans-serif; color: #fff;
    background: rgba(31, 35, 40, 0.92); white-space: pre-wrap; }
  [hidden] { display: none !important; }
`;

const LABELS = {
  connecting: "relive",
  connected: "live",
  reconnecting: "reconnecting…",
  disconnected: "disconnected",
  reloading: "reloading…",
};

function createBadge() {
  const host = document.createElement("relive-badge");
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = BADGE_STYLE;
  const pill = document.createElement("div");
  pill.className = "badge";
  pill.setAttribute("role", "status");
  const dot = document.createElement("span");
  dot.className = "dot";
  const label = document.createElement("span");
  label.className = "label";
  const retryButton = document.createElement("button");
  retryButton.textContent = "Retry";
  retryButton.className = "retry";
  retryButton.hidden = true;
  retryButton.addEventListener("click", () => state.retry());
  // Mirroring between devices, on or off for every tab.
  const syncButton = document.createElement("button");
  syncButton.className = "sync";
  syncButton.addEventListener("click", () => safely(toggleSync));
  pill.append(dot, label, syncButton, retryButton);
  const banner = document.createElement("div");
  banner.className = "banner";
  banner.hidden = true;
  const message = document.createElement("span");
  const dismissLoop = document.createElement("button");
  dismissLoop.textContent = "Dismiss";
  dismissLoop.addEventListener("click", () => {
    state.loop = null;
    renderBadge();
  });
  banner.append(message, dismissLoop);
  const toast = document.createElement("div");
  toast.className = "toast";
  toast.hidden = true;
  toast.setAttribute("role", "status");
  const overlay = document.createElement("div");
  overlay.className = "overlay";
  overlay.hidden = true;
  const panel = document.createElement("div");
  panel.className = "panel";
  panel.setAttribute("role", "alert");
  const header = document.createElement("header");
  const title = document.createElement("span");
  const dismiss = document.createElement("button");
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => {
    state.buildError = null;
    renderBadge();
  });
  header.append(title, dismiss);
  const output = document.createElement("pre");
  panel.append(header, output);
  overlay.append(panel);
  root.append(style, pill, banner, toast, overlay);
  document.documentElement.append(host);
  return { host, pill, label, syncButton, retryButton, banner, message, toast, overlay, title, output };
}

// Renders build output with its ANSI colours as styled text: every piece goes in through
// textContent, so nothing in the output can become markup.
const ANSI = /\x1b\[([0-9;]*)m/g;

function renderAnsi(target, lines) {
  target.textContent = "";
  let classes = [];
  for (const line of lines) {
    let last = 0;
    const text = `${line}\n`;
    const emit = (piece) => {
      if (!piece) return;
      const span = document.createElement("span");
      if (classes.length) span.className = classes.join(" ");
      span.textContent = piece;
      target.append(span);
    };
    for (const match of text.matchAll(ANSI)) {
      emit(text.slice(last, match.index));
      last = match.index + match[0].length;
      for (const code of (match[1] || "0").split(";").map(Number)) {
        if (code === 0) classes = [];
        else if (code === 1) classes.push("bold");
        else if (code >= 30 && code <= 37) classes = classes.filter((c) => !c.startsWith("fg-")).concat(`fg-${code}`);
        else if (code >= 90 && code <= 97) classes = classes.filter((c) => !c.startsWith("fg-")).concat(`fg-${code - 60}`);
        else if (code === 39) classes = classes.filter((c) => !c.startsWith("fg-"));
      }
    }
    emit(text.slice(last).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ""));
  }
}

function setStatus(status) {
  state.status = status;
  renderBadge();
}

function renderBadge() {
  // The build-error overlay shows even where the badge is turned off (never in frames).
  if (inFrame || (!badgeWanted && !state.buildError)) return;
  if (!badge) {
    if (!document.documentElement) return;
    badge = createBadge();
  }
  badge.pill.hidden = !badgeWanted;
  const status = state.paused ? "paused" : state.status;
  badge.pill.className = `badge ${status}${status === "disconnected" || status === "paused" ? " alert" : ""}`;
  badge.label.textContent = state.paused
    ? "paused"
    : state.building && state.status === "connected"
      ? "building…"
      : LABELS[state.status] || state.status;
  const failed = state.buildError;
  badge.overlay.hidden = !failed;
  if (failed) {
    const code = failed.code === null || failed.code === undefined ? "" : ` (exit ${failed.code})`;
    badge.title.textContent = failed.title || `Build failed${code}`;
    renderAnsi(badge.output, failed.lines || []);
  }
  badge.retryButton.hidden = state.status !== "disconnected";
  const sync = state.sync || { on: false, devices: 0 };
  badge.syncButton.hidden = state.status !== "connected";
  badge.syncButton.textContent = sync.on ? `sync · ${sync.devices}` : "sync off";
  badge.syncButton.setAttribute("aria-pressed", String(sync.on));
  badge.syncButton.title = sync.on
    ? `Mirroring scrolling, clicks, typing and navigation between ${sync.devices} devices. Click to stop.`
    : "Mirror scrolling, clicks, typing and navigation between every tab showing this site.";
  const rtt = state.rttMs === null ? "" : ` · round trip ${state.rttMs} ms`;
  const via = state.transport === "event-stream" ? " · via event stream" : "";
  badge.pill.title =
    state.status === "connected"
      ? `relive: connected${rtt}${via}`
      : `relive: ${LABELS[state.status] || state.status}`;
  badge.banner.hidden = !state.loop;
  if (state.loop) badge.message.textContent = loopText(state.loop);
}

// What the banner says about a loop relive stopped (as text, never markup).
function loopText(loop) {
  const files = (loop.paths || []).map((p) => String(p).replace(/^\//, "")).join(", ");
  const fix = String(loop.fix || "");
  return loop.cause === "build"
    ? `relive stopped a build loop: the build writes ${files} into a watched folder, so each ` +
        `build started the next. It no longer rebuilds for the build's own output; your own ` +
        `saves still do. Ignore the output: relive ${fix}`
    : `relive stopped a reload loop: ${files} changed each time this page loaded. Those ` +
        `changes no longer reload; your own saves still do. To stop watching it: relive ${fix}`;
}

let toastTimer = null;

// Messages from `relive notify message` are shown as text, never parsed as HTML.
function showMessage(text) {
  if (!badge) return;
  badge.toast.textContent = text;
  badge.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    if (badge) badge.toast.hidden = true;
  }, 6000);
}

function flashBadge() {
  if (!badge) return;
  badge.pill.classList.add("flash");
  setTimeout(() => badge && badge.pill.classList.remove("flash"), 600);
}

// ---------------------------------------------------------------- page lifecycle

// Keep the page eligible for the back/forward cache: no open connection while it sits there.
addEventListener("pagehide", () => safely(() => dropConnection(false)));
addEventListener("pageshow", (event) => {
  if (event.persisted) safely(retry);
});
document.addEventListener("visibilitychange", () => {
  if (document.hidden || state.status === "connected" || state.status === "reloading") return;
  if (socket) return;
  safely(retry);
});

safely(restoreState);
if (token) {
  renderBadge();
  connect();
} else {
  console.warn("[relive] no token on the relive <script> tag; live reload is off");
}
