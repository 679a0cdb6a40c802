// ---------------------------------------------------------------- sync
//
// (Joined to relive.js into the one module served at /__relive/client.js.)
//
// Many devices, one preview (`--sync`, or the badge's switch): what a person does in this tab is
// sent to relive, which relays it to every tab; each other tab does it too.
// - scrolling of the page and of scrolled containers, by proportion (a phone and a desktop line
//   up by position in the document), at most ~30 updates a second, the last one always sent;
// - clicks on links, buttons, <summary>, labels, checkboxes and radios, on the element found by
//   the same path (id first, then its place among its siblings) — skipped where there is none;
// - typed values of inputs, textareas and selects (values, not keys), never of passwords, card
//   fields (`autocomplete="cc-…"`) or anything inside data-relive-sync="off";
// - form submits, and back and forward.
// A mirrored action is never sent on (each tab names itself with a random `device` id and
// ignores its own; what it does for another tab is done with `mirroring` set), a hidden tab
// sends nothing, frames take no part, and only same-origin navigations are followed.

const device = safely(() => crypto.randomUUID(), String(Math.random()).slice(2));
const SCROLL_EVERY_MS = 33;
const NAV_KEY = "relive:sync-nav";
const STACK_KEY = "relive:sync-stack";
// Set while this tab does what another tab did: what it causes is not sent on.
let mirroring = false;
// Sent and applied, for relive's tests and the curious.
state.sync = { on: false, devices: 0, sent: 0, applied: 0 };

function syncing() {
  return state.sync.on && !inFrame && !mirroring && !document.hidden;
}

function sendSync(action) {
  if (!syncing()) return;
  const message = { type: "sync", device, action };
  if (send(message) || post(message)) state.sync.sent += 1;
}

// ---------------------------------------------------------------- what this tab does

function excluded(el) {
  if (!(el instanceof Element)) return true;
  if (el.closest('[data-relive-sync="off"]')) return true;
  if (el.closest("relive-badge")) return true;
  if (el instanceof HTMLInputElement) {
    if (el.type === "password" || el.type === "file" || el.type === "hidden") return true;
  }
  return /^\s*cc-/i.test(el.getAttribute("autocomplete") || "");
}

const CLICKED = "a[href], button, summary, label, input[type=checkbox], input[type=radio], input[type=submit], input[type=button]";

document.addEventListener(
  "click",
  (event) => {
    if (!syncing() || !event.isTrusted) return;
    const el = event.target instanceof Element ? event.target.closest(CLICKED) : null;
    if (!el || excluded(el)) return;
    // A link elsewhere is followed here only: the other tabs stay on the site.
    if (el.matches("a[href]") && !sameOrigin(el.href)) return;
    sendSync({ kind: "click", target: cssPath(el) });
  },
  true,
);

document.addEventListener(
  "input",
  (event) => {
    const el = event.target;
    if (!syncing() || !(el instanceof Element) || !el.matches("input, textarea, select")) return;
    if (excluded(el)) return;
    const checkable = el.type === "checkbox" || el.type === "radio";
    sendSync({
      kind: "input",
      target: cssPath(el),
      value: checkable ? null : el.value,
      checked: checkable ? el.checked : null,
    });
  },
  true,
);

document.addEventListener(
  "submit",
  (event) => {
    if (!syncing() || !(event.target instanceof HTMLFormElement) || excluded(event.target)) return;
    sendSync({ kind: "submit", target: cssPath(event.target) });
  },
  true,
);

// Scrolling: the page's and each container's, as fractions of what can be scrolled.
const scrollTimers = new Map();
const appliedScroll = new Map();

function scrollOf(target) {
  if (target === null) {
    const el = document.scrollingElement || document.documentElement;
    return { x: scrollX, y: scrollY, w: el.scrollWidth - innerWidth, h: el.scrollHeight - innerHeight };
  }
  return {
    x: target.scrollLeft,
    y: target.scrollTop,
    w: target.scrollWidth - target.clientWidth,
    h: target.scrollHeight - target.clientHeight,
  };
}

function fraction(at, range) {
  return range > 0 ? Math.min(1, Math.max(0, at / range)) : 0;
}

addEventListener(
  "scroll",
  (event) => {
    if (!syncing()) return;
    const target = event.target === document || event.target === window ? null : event.target;
    if (target !== null && (!(target instanceof Element) || excluded(target))) return;
    const key = target === null ? null : cssPath(target);
    // Where a mirrored scroll put it: not this person's doing.
    const now = scrollOf(target);
    const applied = appliedScroll.get(key);
    if (applied && Math.abs(applied.x - now.x) <= 1 && Math.abs(applied.y - now.y) <= 1) return;
    if (scrollTimers.has(key)) return;
    // At most one update per SCROLL_EVERY_MS; the position is read when it is sent, so the
    // last one always wins.
    scrollTimers.set(
      key,
      setTimeout(() => {
        scrollTimers.delete(key);
        const at = scrollOf(target);
        sendSync({ kind: "scroll", target: key, x: fraction(at.x, at.w), y: fraction(at.y, at.h) });
      }, SCROLL_EVERY_MS),
    );
  },
  { capture: true, passive: true },
);

// Back and forward: this tab's own list of pages, so another tab can tell back from forward.
function pageStack() {
  return safely(() => JSON.parse(sessionStorage.getItem(STACK_KEY) || "[]"), []);
}

function rememberPage() {
  const navigation = safely(() => performance.getEntriesByType("navigation")[0], null);
  const kind = navigation ? navigation.type : "navigate";
  let stack = pageStack();
  const here = location.href;
  const position = stack.lastIndexOf(here);
  if (kind === "back_forward" && position >= 0) stack = stack.slice(0, position + 1);
  else if (kind !== "reload" && stack[stack.length - 1] !== here) stack.push(here);
  safely(() => sessionStorage.setItem(STACK_KEY, JSON.stringify(stack.slice(-50))));
  // This page came by going back or forward, and not because another tab did: tell them.
  const caused = safely(() => sessionStorage.getItem(NAV_KEY), null);
  safely(() => sessionStorage.removeItem(NAV_KEY));
  return kind === "back_forward" && caused !== here;
}

let announceHistory = !inFrame && safely(rememberPage, false);
addEventListener("pageshow", (event) => {
  // Restored from the back/forward cache: a traversal all the same.
  if (event.persisted && !inFrame) {
    const caused = safely(() => sessionStorage.getItem(NAV_KEY), null);
    safely(() => sessionStorage.removeItem(NAV_KEY));
    announceHistory = caused !== location.href;
  }
});

// Called on `hello`: what is owed to the other tabs once connected.
function syncConnected(on) {
  state.sync.on = Boolean(on);
  if (announceHistory && state.sync.on) {
    announceHistory = false;
    sendSync({ kind: "history", url: location.href });
  }
  renderBadge();
}

// ---------------------------------------------------------------- what another tab did

function syncReceived(data) {
  if (data.device === device || inFrame || !state.sync.on) return;
  const action = data.action || {};
  mirroring = true;
  try {
    if (applyAction(action)) state.sync.applied += 1;
  } finally {
    mirroring = false;
  }
}

function find(path) {
  if (typeof path !== "string") return null;
  const el = safely(() => document.querySelector(path), null);
  return el && !excluded(el) ? el : null;
}

function navigateForSync(url) {
  if (!sameOrigin(url)) return false;
  const target = new URL(url, location.href).href;
  if (target === location.href) return false;
  safely(() => sessionStorage.setItem(NAV_KEY, target));
  const stack = pageStack();
  const here = stack.lastIndexOf(location.href);
  // Back or forward where this tab has the page next to it; anywhere else, go there.
  if (here > 0 && stack[here - 1] === target) history.back();
  else location.assign(target);
  return true;
}

function applyAction(action) {
  switch (action.kind) {
    case "scroll": {
      const target = action.target === null ? null : find(action.target);
      if (action.target !== null && !target) return false;
      const range = scrollOf(target);
      const x = Math.round(Number(action.x) * range.w) || 0;
      const y = Math.round(Number(action.y) * range.h) || 0;
      if (target === null) scrollTo(x, y);
      else target.scrollTo(x, y);
      const at = scrollOf(target);
      appliedScroll.set(action.target, { x: at.x, y: at.y });
      return true;
    }
    case "click": {
      const el = find(action.target);
      if (!el || !el.matches(CLICKED)) return false;
      if (el.matches("a[href]")) {
        if (!sameOrigin(el.href)) return false;
        safely(() => sessionStorage.setItem(NAV_KEY, el.href));
      }
      el.click();
      return true;
    }
    case "input": {
      const el = find(action.target);
      if (!el || !el.matches("input, textarea, select")) return false;
      if (action.checked !== null && action.checked !== undefined) el.checked = Boolean(action.checked);
      else el.value = String(action.value ?? "");
      el.dispatchEvent(new Event("input", { bubbles: true }));
      el.dispatchEvent(new Event("change", { bubbles: true }));
      return true;
    }
    case "submit": {
      const form = find(action.target);
      if (!(form instanceof HTMLFormElement)) return false;
      const target = new URL(form.getAttribute("action") || location.href, location.href);
      if (target.origin !== location.origin) return false;
      safely(() => sessionStorage.setItem(NAV_KEY, target.href));
      form.requestSubmit();
      return true;
    }
    case "history":
      return typeof action.url === "string" && navigateForSync(action.url);
    default:
      return false;
  }
}

// The dashboard's "navigate all devices".
function navigateAll(url) {
  if (inFrame || typeof url !== "string" || !sameOrigin(url)) return;
  safely(() => sessionStorage.setItem(NAV_KEY, new URL(url, location.href).href));
  location.assign(url);
}

// The badge's switch: on or off for every tab.
function toggleSync() {
  send({ type: "sync_toggle", on: !state.sync.on }) ||
    post({ type: "sync_toggle", on: !state.sync.on });
}
