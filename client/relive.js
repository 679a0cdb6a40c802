// relive browser client: served at /__relive/client.js and loaded by the one <script> tag
// relive adds to each page. It keeps a WebSocket to relive open, reloads the page on `reload`,
// swaps stylesheets in place on `css`, and reconnects with backoff, catching up on anything it
// missed. No dependencies; holds no secret (the socket's token is on the tag in the page).

const tag = document.querySelector("script[data-relive]");
const token = tag ? tag.dataset.token || "" : "";
const SCROLL_KEY = "relive:scroll";
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5000;

// Exposed for debugging and for relive's own browser tests; not an API.
const state = (globalThis.__relive = {
  status: "connecting",
  session: null,
  lastId: null,
  attempts: 0,
  heartbeatMs: 30000,
  lastHeard: 0,
  cssSwaps: 0,
});

let socket = null;
let retryTimer = null;
let watchdog = null;

function log(...args) {
  console.info("%c[relive]", "color:#8250df", ...args);
}

function socketUrl() {
  const url = new URL("/__relive/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
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
  if (socket) return;
  const ws = new WebSocket(socketUrl());
  socket = ws;
  ws.onmessage = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    handle(ws, event);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    if (state.status !== "closed") scheduleReconnect();
  };
}

function scheduleReconnect() {
  if (retryTimer !== null) return;
  state.status = "reconnecting";
  // Exponential backoff with jitter: quick first retry, then at most every few seconds.
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** state.attempts);
  const delay = base / 2 + Math.random() * (base / 2);
  state.attempts += 1;
  if (state.attempts === 1) log("connection lost; reconnecting…");
  retryTimer = setTimeout(reconnect, document.hidden ? Math.max(delay, MAX_RETRY_MS) : delay);
}

// Before reopening the socket, ask relive whether it is the same process: a restarted relive
// has a new token (the one in this page no longer opens the socket) and may serve changed
// files, so the page reloads to pick up both.
async function reconnect() {
  retryTimer = null;
  if (state.session !== null) {
    let status;
    try {
      const response = await fetch("/__relive/status", { cache: "no-store" });
      if (!response.ok) throw new Error(`status ${response.status}`);
      status = await response.json();
    } catch {
      scheduleReconnect();
      return;
    }
    if (status.session_id !== state.session) {
      reload("relive restarted");
      return;
    }
  }
  connect();
}

function handle(ws, event) {
  state.lastHeard = Date.now();
  switch (event.type) {
    case "hello":
      if (state.attempts > 0) log("reconnected");
      else log("connected; this page reloads when its files change");
      state.status = "connected";
      state.attempts = 0;
      state.session = event.session_id;
      state.lastId = event.data.last_id;
      state.heartbeatMs = event.data.heartbeat_ms || state.heartbeatMs;
      startWatchdog(ws);
      return;
    case "ping":
      ws.send(JSON.stringify({ type: "pong" }));
      return;
    case "reload":
      state.lastId = event.id;
      reload(event.data.reason);
      return;
    case "css":
      state.lastId = event.id;
      swapStylesheets(event.data.paths || []);
      return;
    default:
      if (typeof event.id === "number") state.lastId = event.id;
  }
}

// A socket that hears nothing (not even a ping) for two heartbeats is dead: reconnect.
function startWatchdog(ws) {
  clearInterval(watchdog);
  watchdog = setInterval(() => {
    if (socket !== ws) return clearInterval(watchdog);
    if (Date.now() - state.lastHeard > 2 * state.heartbeatMs) {
      clearInterval(watchdog);
      socket = null;
      ws.close();
      scheduleReconnect();
    }
  }, state.heartbeatMs);
}

function reload(reason) {
  log(`reloading: ${reason}`);
  state.status = "closed";
  try {
    sessionStorage.setItem(
      SCROLL_KEY,
      JSON.stringify({ url: location.href, x: scrollX, y: scrollY }),
    );
  } catch {
    // Storage may be disabled; the reload still happens.
  }
  location.reload();
}

function restoreScroll() {
  let saved;
  try {
    saved = JSON.parse(sessionStorage.getItem(SCROLL_KEY) || "null");
    sessionStorage.removeItem(SCROLL_KEY);
  } catch {
    return;
  }
  if (!saved || saved.url !== location.href) return;
  const apply = () => scrollTo(saved.x, saved.y);
  if (document.readyState === "complete") apply();
  else addEventListener("load", apply, { once: true });
}

function pathMatches(href, path) {
  let pathname;
  try {
    pathname = new URL(href, location.href).pathname;
  } catch {
    return false;
  }
  return pathname === path || path.endsWith(pathname) || pathname.endsWith(path);
}

function sameOrigin(href) {
  try {
    return new URL(href, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

// Replaces each matching <link rel=stylesheet> with a cache-busted copy; the old one stays
// until the new one has loaded, so the page never shows unstyled.
function swapStylesheets(paths) {
  const links = [...document.querySelectorAll('link[rel~="stylesheet"][href]')].filter(
    (link) => !link.dataset.reliveReplaced,
  );
  const matching = links.filter((link) => paths.some((p) => pathMatches(link.href, p)));
  // A changed file no <link> names directly (an @import, a preprocessor output): refresh all
  // same-origin stylesheets, which is still cheaper and smoother than a reload.
  const targets = matching.length > 0 ? matching : links.filter((l) => sameOrigin(l.href));
  log(`updating ${targets.length} stylesheet(s): ${paths.join(", ")}`);
  for (const link of targets) {
    const url = new URL(link.href, location.href);
    url.searchParams.set("relive", String(Date.now()));
    const fresh = link.cloneNode();
    fresh.href = url.href;
    link.dataset.reliveReplaced = "1";
    const done = () => {
      link.remove();
      state.cssSwaps += 1;
    };
    fresh.addEventListener("load", done, { once: true });
    fresh.addEventListener("error", done, { once: true });
    link.after(fresh);
  }
}

// Leave the back/forward cache usable: no open socket while the page is hidden in it.
addEventListener("pagehide", () => {
  if (socket) {
    const ws = socket;
    socket = null;
    ws.close();
  }
});
addEventListener("pageshow", (event) => {
  if (event.persisted) reconnect();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && retryTimer !== null) {
    clearTimeout(retryTimer);
    reconnect();
  }
});

restoreScroll();
if (token) connect();
else console.warn("[relive] no token on the relive <script> tag; live reload is off");
