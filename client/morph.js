// ---------------------------------------------------------------- morph
//
// (Joined to relive.js into the one module served at /__relive/client.js.)
//
// A `morph` event (an HTML page or a template changed) updates the page in place: the client
// fetches its own URL again (marked with X-Relive-Morph, so relive adds no tag to it), parses
// it and morphs the live document to match. Elements are matched by `id` first (anywhere in the
// page: a moved element is the same node, moved), then by position and tag; attributes and text
// are patched and nodes inserted, moved or removed, so untouched nodes stay the same objects and
// keep what a person did to them: focus, caret, typed values, an open <details>, playing media,
// scroll positions. Nodes the page's scripts added after it loaded are left where the new HTML
// does not speak of them, and so are the children of a container the new HTML leaves empty (a
// mount point an app renders into).
//
// It reloads instead, and says why, when a morph could not be faithful: a script was added,
// removed or changed; the head changed in anything but <title>, <meta> and stylesheets; the page
// runs a framework's own hot reloading (Vite, Next.js); the fetch failed, redirected or was not
// HTML; the morph threw; or the page opts out (<meta name="relive" content="reload">,
// ?relive-morph=off, `watch.morph = false`, which makes relive send `reload` instead).
//
// Each changed or inserted element pulses briefly (Web Animations on `outline`: no layout
// change, nothing left in the DOM; none under prefers-reduced-motion, ?relive-highlight=off or
// `watch.highlight = false`).

const MORPH_HEADER = "X-Relive-Morph";
const pageParams = new URLSearchParams(location.search);
const highlightWanted =
  !(tag && tag.dataset.highlight === "off") && pageParams.get("relive-highlight") !== "off";
const MAX_HIGHLIGHTS = 50;

// Nodes the page's scripts add from now on, and the attributes they (or the browser, for a
// person: <details open>) set. A morph's own changes are not recorded: the observer is emptied
// before and after each morph.
const addedAtRuntime = new WeakSet();
const setAtRuntime = new WeakMap();
const runtimeObserver = new MutationObserver((records) => recordRuntime(records));
function recordRuntime(records) {
  for (const record of records) {
    if (record.type === "attributes") {
      const names = setAtRuntime.get(record.target) || new Set();
      names.add(record.attributeName);
      setAtRuntime.set(record.target, names);
    } else {
      for (const node of record.addedNodes) addedAtRuntime.add(node);
    }
  }
}
safely(() =>
  runtimeObserver.observe(document, { childList: true, subtree: true, attributes: true }),
);

// What the page's scripts and head were when it was served (or last morphed): a new version
// that differs in them cannot be morphed faithfully.
let baseScripts = safely(() => scriptsOf(document), "");
let baseHead = safely(() => headOf(document), "");

function isRelives(node) {
  return (
    node.nodeType === 1 && (node.hasAttribute("data-relive") || node.localName === "relive-badge")
  );
}

function kept(node) {
  return isRelives(node) || addedAtRuntime.has(node);
}

// An element as a string, without what differs from one answer to the next though nothing
// changed (a CSP nonce, which browsers also hide from the live DOM).
function signature(el) {
  const attrs = [...el.attributes]
    .filter((a) => a.name !== "nonce")
    .map((a) => `${a.name}=${JSON.stringify(a.value)}`)
    .sort()
    .join(" ");
  return `<${el.localName} ${attrs}>${el.localName === "script" || el.localName === "noscript" ? el.textContent : ""}`;
}

function scriptsOf(doc) {
  return [...doc.querySelectorAll("script")]
    .filter((s) => !kept(s))
    .map(signature)
    .join("\n");
}

// What a head holds besides what a morph updates itself (title, meta, stylesheets; scripts are
// compared on their own).
function morphableInHead(el) {
  const name = el.localName;
  return (
    name === "title" ||
    name === "meta" ||
    name === "style" ||
    name === "script" ||
    (name === "link" && /\bstylesheet\b/i.test(el.getAttribute("rel") || ""))
  );
}

function headOf(doc) {
  if (!doc.head) return "";
  return [...doc.head.children]
    .filter((el) => !kept(el) && !morphableInHead(el))
    .map(signature)
    .join("\n");
}

// Why this page reloads instead of morphing, before anything is fetched; null if it may morph.
function notMorphable() {
  if (pageParams.get("relive-morph") === "off") return "?relive-morph=off";
  if (document.querySelector('meta[name="relive"][content="reload" i]')) {
    return 'the page asks for reloads (<meta name="relive" content="reload">)';
  }
  if (document.querySelector('script[src*="/@vite/client"]')) return "Vite updates this page";
  if (document.getElementById("__next") || document.querySelector('script[src*="/_next/"]')) {
    return "Next.js updates this page";
  }
  if (document.contentType !== "text/html") return "not an HTML page";
  return null;
}

// Why the fetched version cannot be morphed in faithfully; null if it can.
function unfaithful(doc) {
  if (doc.querySelector('meta[name="relive"][content="reload" i]')) {
    return 'the page asks for reloads (<meta name="relive" content="reload">)';
  }
  if (scriptsOf(doc) !== baseScripts) return "a script changed";
  if (headOf(doc) !== baseHead) return "the head changed";
  return null;
}

// A `morph` event: update the page in place, or reload and say why.
let morphing = null;
let morphAgain = null;

function morphPage(data) {
  if (topReloads) return; // the top page updates, and this frame with it
  const reason = data.reason || "the page changed";
  const refused = notMorphable();
  if (refused) {
    reloadBecause(reason, refused);
    return;
  }
  if (state.paused) {
    pendingReason = reason;
    return;
  }
  // One morph at a time; a change during one runs one more after it, with the newest content.
  if (morphing) {
    morphAgain = data;
    return;
  }
  morphing = morphOnce(reason, data.paths || [])
    .catch((error) => reloadBecause(reason, `the morph failed: ${error && error.message}`))
    .finally(() => {
      morphing = null;
      const next = morphAgain;
      morphAgain = null;
      if (next) morphPage(next);
    });
}

async function morphOnce(reason, paths) {
  const started = performance.now();
  let response;
  try {
    response = await fetch(location.href, {
      headers: { [MORPH_HEADER]: "1" },
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    reloadBecause(reason, "the page could not be fetched");
    return;
  }
  if (response.redirected) return reloadBecause(reason, "the page now redirects");
  if (response.status !== 200) return reloadBecause(reason, `the page answered ${response.status}`);
  if (!/^text\/html/i.test(response.headers.get("content-type") || "")) {
    return reloadBecause(reason, "the page is no longer HTML");
  }
  const text = await response.text();
  const fetchedMs = performance.now() - started;
  const doc = new DOMParser().parseFromString(text, "text/html");
  const parsed = performance.now();
  const why = unfaithful(doc);
  if (why) return reloadBecause(reason, why);
  const result = morphDocument(doc);
  const done = performance.now();
  const tenths = (ms) => Math.round(ms * 10) / 10;
  state.morphs += 1;
  state.lastMorph = {
    changes: result.changes,
    ms: tenths(done - started),
    fetch_ms: tenths(fetchedMs),
    parse_ms: tenths(parsed - started - fetchedMs),
    morph_ms: tenths(done - parsed),
  };
  log(`morphed (${result.changes} changes, ${state.lastMorph.ms} ms): ${reason}`);
  tell({
    type: "updated",
    path: location.pathname,
    outcome: "morphed",
    changes: result.changes,
    ms: state.lastMorph.ms,
  });
  if (result.changes > 0) {
    applied();
    highlight(result.touched);
  }
  // Stylesheets and images saved with the page keep their URLs: fetch them again.
  const sheets = paths.filter((p) => /\.css$/i.test(p));
  if (sheets.length) swapStylesheets(sheets);
  const images = paths.filter((p) => /\.(png|jpe?g|gif|webp|avif|svg|ico|bmp)$/i.test(p));
  if (images.length) refreshImages(images);
}

// Reloads, having told relive why (the terminal says it): once the message has left, or after
// a moment if the connection is slow to take it.
function reloadBecause(reason, why) {
  tell({ type: "updated", path: location.pathname, outcome: "reloaded", reason: why });
  const deadline = performance.now() + 300;
  const go = () => {
    const waiting = socket instanceof WebSocket && socket.bufferedAmount > 0;
    if (waiting && performance.now() < deadline) setTimeout(go, 10);
    else reload(`${reason} (${why})`);
  };
  go();
}

function tell(message) {
  if (!send(message)) post(message);
}

// ---------------------------------------------------------------- the morph itself

function morphDocument(doc) {
  const run = {
    changes: 0,
    touched: new Set(),
    // Elements with an id found once in both versions: matched by it wherever they are.
    liveById: idsOf(document, doc),
  };
  recordRuntime(runtimeObserver.takeRecords());
  try {
    morphHead(document.head, doc.head, run);
    morphAttributes(document.documentElement, doc.documentElement, run);
    morphAttributes(document.body, doc.body, run);
    morphChildren(document.body, doc.body, run);
    baseScripts = scriptsOf(doc);
    baseHead = headOf(doc);
  } finally {
    // The morph's own insertions are not the page's scripts' doing.
    runtimeObserver.takeRecords();
  }
  return run;
}

function idsOf(live, fetched) {
  const count = (root) => {
    const seen = new Map();
    for (const el of root.querySelectorAll("[id]")) {
      seen.set(el.id, seen.has(el.id) ? null : el);
    }
    return seen;
  };
  const inLive = count(live);
  const inFetched = count(fetched);
  const both = new Map();
  for (const [id, el] of inLive) {
    if (el && inFetched.get(id)) both.set(id, el);
  }
  return both;
}

function change(run, el) {
  run.changes += 1;
  if (el && el.nodeType === 1) run.touched.add(el);
}

// The head: the title's text, meta elements and stylesheets; anything else that differs was
// caught by `unfaithful`.
function morphHead(live, fetched, run) {
  if (!live || !fetched) return;
  const title = fetched.querySelector("title");
  if (title && document.title !== title.textContent) {
    document.title = title.textContent;
    run.changes += 1;
  }
  const keyOf = (el) => {
    if (el.localName === "meta") {
      for (const name of ["charset", "name", "property", "http-equiv", "itemprop"]) {
        if (el.hasAttribute(name)) return `meta ${name}=${el.getAttribute(name)}`;
      }
    }
    if (el.localName === "link") return `link ${unbusted(el.getAttribute("href"))}`;
    if (el.localName === "style") return `style ${el.textContent}`;
    return null;
  };
  const wanted = new Map();
  for (const el of fetched.children) {
    const key = keyOf(el);
    if (key) wanted.set(key, el);
  }
  const have = new Map();
  for (const el of [...live.children]) {
    const key = keyOf(el);
    if (!key || kept(el) || el.dataset.reliveReplaced) continue;
    if (!wanted.has(key)) {
      el.remove();
      run.changes += 1;
    } else {
      have.set(key, el);
    }
  }
  for (const [key, el] of wanted) {
    const current = have.get(key);
    // A stylesheet's href may carry relive's swap parameter: the same sheet.
    if (current) morphAttributes(current, el, run, current.localName === "link" ? "href" : null);
    else {
      live.append(document.importNode(el, true));
      run.changes += 1;
    }
  }
}

// A URL without the parameter relive's stylesheet swap adds.
function unbusted(href) {
  return safely(() => {
    const url = new URL(href, location.href);
    url.searchParams.delete("relive");
    return url.href;
  }, href);
}

// Attributes the page's scripts (or the person) set since it loaded stay as they are set.
function morphAttributes(live, fetched, run, skip) {
  if (!live || !fetched) return;
  const runtime = setAtRuntime.get(live);
  const leave = (name) =>
    name === skip ||
    name === "nonce" ||
    name.startsWith("data-relive") ||
    (runtime && runtime.has(name)) ||
    // `open` on <details> and <dialog> is the person's.
    (name === "open" && (live.localName === "details" || live.localName === "dialog"));
  let changed = false;
  for (const attr of fetched.attributes) {
    if (leave(attr.name)) continue;
    if (live.getAttribute(attr.name) !== attr.value) {
      live.setAttribute(attr.name, attr.value);
      changed = true;
    }
  }
  for (const attr of [...live.attributes]) {
    if (leave(attr.name)) continue;
    if (!fetched.hasAttribute(attr.name)) {
      live.removeAttribute(attr.name);
      changed = true;
    }
  }
  if (changed) change(run, live);
}

function sameKind(live, fetched) {
  if (live.nodeType !== fetched.nodeType) return false;
  if (live.nodeType !== 1) return true;
  if (live.localName !== fetched.localName) return false;
  // An element with an id is only ever the element with that id.
  return (live.id || "") === (fetched.id || "");
}

function morphNode(live, fetched, run) {
  if (live.nodeType === 3 || live.nodeType === 8) {
    if (live.nodeValue !== fetched.nodeValue) {
      live.nodeValue = fetched.nodeValue;
      change(run, live.parentElement);
    }
    return;
  }
  if (live.nodeType !== 1) return;
  morphAttributes(live, fetched, run);
  const name = live.localName;
  // A script's content is compared, never patched (it ran already); a template's content is
  // a fragment of its own.
  if (name === "script") return;
  if (name === "template") {
    if (live.innerHTML !== fetched.innerHTML) {
      live.innerHTML = fetched.innerHTML;
      change(run, live);
    }
    return;
  }
  // A container the new HTML leaves empty that has children now: an app renders into it.
  if (!fetched.hasChildNodes() && [...live.childNodes].some((n) => n.nodeType === 1)) return;
  morphChildren(live, fetched, run);
}

// Makes `live`'s children those of `fetched`, touching as few nodes as it can.
function morphChildren(live, fetched, run) {
  const wanted = [...fetched.childNodes];
  let cursor = live.firstChild;
  const skipKept = () => {
    while (cursor && kept(cursor)) cursor = cursor.nextSibling;
  };
  for (let i = 0; i < wanted.length; i += 1) {
    const next = wanted[i];
    skipKept();
    // Most nodes are unchanged: equal to their new version, and nothing in them to do.
    if (cursor && cursor.isEqualNode(next)) {
      cursor = cursor.nextSibling;
      continue;
    }
    // The element with this id, wherever it is now: moved here if need be, never recreated.
    const byId = next.nodeType === 1 && next.id ? run.liveById.get(next.id) : undefined;
    if (byId) {
      if (byId === cursor) cursor = cursor.nextSibling;
      else {
        move(live, byId, cursor);
        change(run, byId);
      }
      morphNode(byId, next, run);
      continue;
    }
    const match = findMatch(cursor, next, wanted[i + 1], run);
    if (match) {
      // Whatever stood before the match is gone from the new version.
      while (cursor !== match) {
        const gone = cursor;
        cursor = cursor.nextSibling;
        removeUnlessKept(gone, run);
      }
      cursor = match.nextSibling;
      if (!match.isEqualNode(next)) morphNode(match, next, run);
    } else {
      const fresh = document.importNode(next, true);
      live.insertBefore(fresh, cursor);
      change(run, fresh.nodeType === 1 ? fresh : live);
    }
  }
  while (cursor) {
    const gone = cursor;
    cursor = cursor.nextSibling;
    removeUnlessKept(gone, run);
  }
}

// The live node, from `cursor` on, that the fetched node `next` becomes; null to insert it.
function findMatch(cursor, next, after, run) {
  if (!cursor) return null;
  if (sameKind(cursor, next) && !claimedById(cursor, run)) {
    // (Not equal: that was looked at first.) `next` was inserted before what is here now.
    if (after && cursor.isEqualNode(after)) return null;
    const following = nextUnkept(cursor);
    // What is here now was removed, and `next` is the node after it.
    if (following && following.isEqualNode(next) && !claimedById(following, run)) return following;
    return cursor;
  }
  // What is here now is what the node after `next` becomes: `next` is new.
  if (after && !kept(cursor) && sameKind(cursor, after)) return null;
  // Look a little further for an equal node, then for one of the same kind.
  let candidate = cursor;
  for (let steps = 0; candidate && steps < 8; steps += 1) {
    if (!kept(candidate) && !claimedById(candidate, run) && candidate.isEqualNode(next)) {
      return candidate;
    }
    candidate = candidate.nextSibling;
  }
  candidate = cursor;
  for (let steps = 0; candidate && steps < 8; steps += 1) {
    if (!kept(candidate) && !claimedById(candidate, run) && sameKind(candidate, next)) {
      return candidate;
    }
    candidate = candidate.nextSibling;
  }
  return null;
}

function nextUnkept(node) {
  let next = node.nextSibling;
  while (next && kept(next)) next = next.nextSibling;
  return next;
}

// Whether `node` holds an element the new version places by its id (somewhere else, maybe).
function claimedById(node, run) {
  if (node.nodeType !== 1) return false;
  if (node.id && run.liveById.has(node.id)) return true;
  return false;
}

function removeUnlessKept(node, run) {
  if (kept(node)) return;
  // An element the new version places by id elsewhere is moved there later, not lost: it
  // stays in `liveById`, detached until then.
  const parent = node.parentElement;
  node.remove();
  change(run, parent);
}

// Moves `node` before `before` in `parent`, keeping its state where the browser can
// (`moveBefore` keeps focus, media and animations; `insertBefore` is the fallback).
function move(parent, node, before) {
  if (typeof parent.moveBefore === "function" && node.isConnected) {
    try {
      parent.moveBefore(node, before);
      return;
    } catch {
      // Different documents or a disconnected node: the plain move below.
    }
  }
  parent.insertBefore(node, before);
}

// ---------------------------------------------------------------- highlight

const reducedMotion = safely(() => matchMedia("(prefers-reduced-motion: reduce)"), null);

function highlight(touched) {
  if (!highlightWanted || (reducedMotion && reducedMotion.matches)) return;
  let shown = 0;
  for (const el of touched) {
    if (shown >= MAX_HIGHLIGHTS) break;
    if (!el.isConnected || el === document.body || el === document.documentElement) continue;
    if (typeof el.animate !== "function") continue;
    shown += 1;
    safely(() =>
      el.animate(
        [
          { outline: "2px solid rgba(245, 158, 11, 0.9)", outlineOffset: "2px" },
          { outline: "2px solid rgba(245, 158, 11, 0)", outlineOffset: "2px" },
        ],
        { duration: 1000, easing: "ease-out" },
      ),
    );
  }
}
