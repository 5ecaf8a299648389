/*!
 * Ticker <breaking-ticker> web component. No dependencies. Reference: docs/embedding.md.
 *
 *   <script src="ORIGIN/widget/VERSION/ticker.min.js" defer></script>
 *   <breaking-ticker edition="en" categories="politics" regions="mena" max-urgency="3"></breaking-ticker>
 *
 * Filters: edition, categories, regions, max-urgency (comma lists), src-base (service base URL,
 * defaults to this script's origin), lang (defaults to the edition), max-items, show-empty.
 * Presentation: mode ("crawl", the single-line default, or "rotate", wrapping to as many lines
 * as a headline needs; prefers-reduced-motion always gets "rotate"), speed (crawl, characters
 * per second), dwell and priority-dwell (rotate, seconds), order ("priority" or "newest"),
 * priority-urgency, flash-urgency, priority-passes, updated-for (seconds), label, short-label.
 * Theme with CSS custom properties (--ticker-*) and ::part(bar|label|items|item|headline|
 * updated|note|time|controls|button).
 * Events (bubbling, composed): ticker-item, ticker-update, ticker-retract, ticker-state; the
 * older ticker:update and ticker:status are still sent.
 * State for scripts and tests: el.items (copies, newest first), el.order (ids as shown),
 * el.cycle (crawl sequence), el.mode, el.lastEventId, el.status, el.paused.
 *
 * Headlines are data: every string goes into the DOM through textContent or attributes,
 * never parsed as markup.
 *
 * A host page with its own Content-Security-Policy must allow the service's origin in
 * script-src (this file) and connect-src (the event stream).
 */
(() => {
  "use strict";
  if (!window.customElements || customElements.get("breaking-ticker")) return;

  // Captured now: document.currentScript is null once the script has finished running.
  const SCRIPT_ORIGIN = (() => {
    const s = document.currentScript;
    try {
      return s && s.src ? new URL(s.src, location.href).origin : location.origin;
    } catch (_) {
      return location.origin;
    }
  })();

  const EVENT_TYPES = [
    "snapshot", "item.published", "item.updated", "item.retracted", "item.expired", "reset",
  ];
  const CLOCK_MS = 1000;
  const RELATIVE_REFRESH_MS = 15000;
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  // A crawl that starts (or restarts on a flash) shows the headline's start still for this long.
  const CRAWL_HOLD_MS = 1500;
  const CRAWL_GAP_EM = 3;
  const RTL_LANGS = new Set(["ar", "fa", "he", "ur", "ps", "ckb", "dv", "yi"]);
  const FILTER_ATTRS = new Set(["edition", "categories", "regions", "max-urgency", "src-base"]);
  // [attribute, default, min, max]: the documented defaults.
  const NUMBERS = {
    speed: ["speed", 12, 2, 200],
    dwell: ["dwell", 7, 1, 600],
    priorityDwell: ["priority-dwell", 14, 1, 600],
    priorityUrgency: ["priority-urgency", 2, 0, 9],
    flashUrgency: ["flash-urgency", 1, 0, 9],
    priorityPasses: ["priority-passes", 2, 1, 5],
    updatedFor: ["updated-for", 120, 0, 86400],
    maxItems: ["max-items", 10, 1, 50],
  };

  const STRINGS = {
    en: {
      label: "BREAKING", short: "NOW", region: "Breaking news", prev: "Previous headline",
      next: "Next headline", pause: "Pause headlines", play: "Resume headlines",
      more: "Headline controls", empty: "No breaking news right now", updated: "UPDATED",
      push: "Alert me to flash news", pushOn: "Flash alerts are on",
    },
    ar: {
      label: "عاجل", short: "عاجل", region: "أخبار عاجلة", prev: "الخبر السابق",
      next: "الخبر التالي", pause: "إيقاف تبديل الأخبار", play: "استئناف تبديل الأخبار",
      more: "أدوات التحكم في الأخبار", empty: "لا أخبار عاجلة الآن", updated: "مُحدَّث",
      push: "نبّهني إلى الأخبار العاجلة", pushOn: "تنبيهات الأخبار العاجلة مفعّلة",
    },
    es: {
      label: "ÚLTIMA HORA", short: "AHORA", region: "Noticias de última hora",
      prev: "Titular anterior", next: "Titular siguiente", pause: "Pausar titulares",
      play: "Reanudar titulares", more: "Controles de titulares",
      empty: "No hay noticias de última hora", updated: "ACTUALIZADO",
      push: "Avísame de las noticias urgentes", pushOn: "Alertas urgentes activadas",
    },
  };

  const CSS = `
    :host { display: block; contain: content; container-type: inline-size; }
    :host([hidden]) { display: none; }
    /* all: initial on the inner bar: the host page's inherited styles stop here. */
    .bar {
      all: initial;
      box-sizing: border-box;
      position: relative;
      display: flex;
      align-items: stretch;
      width: 100%;
      min-height: var(--ticker-height, 2.75rem);
      background: var(--ticker-bg, #141414);
      color: var(--ticker-fg, #ffffff);
      font-family: var(--ticker-font, system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
        "Noto Sans Arabic", Tahoma, Arial, sans-serif);
      font-size: var(--ticker-font-size, 15px);
      line-height: var(--ticker-line-height, 1.4);
      border-radius: var(--ticker-radius, 0);
      overflow: hidden;
      text-align: start;
    }
    .bar[hidden] { display: none; }
    .bar.urgent { background: var(--ticker-urgent-bg, #7a0010); }
    .label {
      flex: none;
      display: flex;
      align-items: center;
      padding: 0 0.85em;
      background: var(--ticker-label-bg, #c8102e);
      color: var(--ticker-label-fg, #ffffff);
      font-family: var(--ticker-label-font, inherit);
      font-weight: 800;
      letter-spacing: 0.06em;
      text-transform: uppercase;
      white-space: nowrap;
    }
    .label .short { display: none; }
    /* Letter spacing breaks Arabic joining. */
    .bar[dir="rtl"] .label, .bar[dir="rtl"] .updated { letter-spacing: 0; }
    .bar.urgent .label { animation: ticker-flash 0.9s ease-in-out 4; }
    .items {
      position: relative;
      flex: 1 1 auto;
      min-width: 0;
      display: flex;
      align-items: center;
      margin: 0;
      padding: 0.35em 0.85em;
      list-style: none;
      overflow: hidden;
    }
    .item {
      display: flex;
      flex-wrap: wrap;
      align-items: baseline;
      column-gap: 0.65em;
      row-gap: 0.15em;
      min-width: 0;
      animation: ticker-in 0.35s ease-out;
    }
    .item[hidden], .empty[hidden] { display: none; }
    .headline {
      min-width: 0;
      overflow-wrap: anywhere;
      unicode-bidi: isolate;
      color: inherit;
      font-weight: 600;
      text-decoration: none;
    }
    a.headline:hover { text-decoration: underline; }
    .updated {
      flex: none;
      align-self: center;
      padding: 0.05em 0.4em;
      border-radius: 0.2em;
      background: var(--ticker-updated-bg, #ffbf47);
      color: var(--ticker-updated-fg, #141414);
      font-size: 0.75em;
      font-weight: 800;
      letter-spacing: 0.04em;
      white-space: nowrap;
    }
    .note { unicode-bidi: isolate; font-style: italic; }
    .time {
      flex: none;
      font-size: 0.85em;
      opacity: 0.85;
      white-space: nowrap;
      unicode-bidi: isolate;
    }
    .empty { opacity: 0.8; font-style: italic; }
    /* Crawl: one line; each headline is its own strip moved by the Web Animations API. */
    .bar.crawl .items { padding: 0; }
    .bar.crawl .item {
      position: absolute;
      top: 0;
      bottom: 0;
      inset-inline-start: 0;
      flex-wrap: nowrap;
      align-items: center;
      width: max-content;
      padding: 0 0.85em;
      white-space: nowrap;
      animation: none;
    }
    .bar.crawl .empty { padding: 0 0.85em; }
    .controls { flex: none; display: flex; align-items: center; padding: 0 0.35em; }
    button {
      all: initial;
      box-sizing: border-box;
      display: inline-flex;
      align-items: center;
      justify-content: center;
      min-width: 2em;
      height: 2em;
      border-radius: 0.25em;
      color: inherit;
      font: inherit;
      line-height: 1;
      cursor: pointer;
    }
    button:hover { background: rgba(255, 255, 255, 0.14); }
    button[hidden], .more { display: none; }
    a:focus-visible, button:focus-visible {
      outline: 2px solid var(--ticker-focus, #ffbf47);
      outline-offset: 2px;
    }
    /* Arrows point the reading direction. */
    .bar[dir="rtl"] .prev, .bar[dir="rtl"] .next { transform: scaleX(-1); }
    .sr-only {
      position: absolute;
      width: 1px;
      height: 1px;
      margin: -1px;
      padding: 0;
      overflow: hidden;
      clip: rect(0 0 0 0);
      white-space: nowrap;
      border: 0;
    }
    /* Phones: the short label, and the three controls behind one button; the time stays. */
    @container (max-width: 520px) {
      .label { padding: 0 0.6em; letter-spacing: 0.02em; font-size: 0.85em; }
      .label .long { display: none; }
      .label .short { display: inline; }
      .items { padding: 0.35em 0.6em; }
      .controls { padding: 0 0.15em; }
      .controls:not(.open) .ctl { display: none; }
      .more:not([hidden]) { display: inline-flex; }
      button { min-width: 1.8em; }
    }
    @keyframes ticker-flash { 50% { opacity: 0.35; } }
    @keyframes ticker-in { from { opacity: 0; transform: translateY(0.4em); } }
    @media (prefers-reduced-motion: reduce) {
      .bar *, .bar { animation: none !important; transition: none !important; }
    }
  `;

  // One parsed sheet shared by every instance; constructed sheets are not blocked by a
  // style-src CSP the way a <style> element would be.
  let sharedSheet = null;
  function adoptStyles(root) {
    if ("adoptedStyleSheets" in root && typeof CSSStyleSheet === "function") {
      try {
        if (!sharedSheet) {
          sharedSheet = new CSSStyleSheet();
          sharedSheet.replaceSync(CSS);
        }
        root.adoptedStyleSheets = [sharedSheet];
        return;
      } catch (_) { /* fall through to a <style> element */ }
    }
    const style = document.createElement("style");
    style.textContent = CSS;
    root.appendChild(style);
  }

  function splitList(value) {
    return (value || "").split(",").map((s) => s.trim()).filter(Boolean);
  }

  // Only http(s) links: javascript:, data: and friends are dropped, the headline stays text.
  function safeUrl(value, base) {
    if (typeof value !== "string" || !value) return null;
    try {
      const u = new URL(value, base);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (_) {
      return null;
    }
  }

  function itemTime(item) {
    const t = Date.parse(item.published_at || item.created_at || "");
    return Number.isNaN(t) ? 0 : t;
  }

  function byNewest(a, b) {
    return itemTime(b) - itemTime(a);
  }

  function urgencyOf(item) {
    return typeof item.urgency === "number" ? item.urgency : 5;
  }

  // Priority items once per chunk of the others: in front, and on screen more often.
  function interleave(priority, rest, passes) {
    if (!priority.length) return rest;
    if (passes <= 1 || !rest.length) return priority.concat(rest);
    const out = [];
    const size = Math.ceil(rest.length / passes);
    for (let i = 0; i < passes; i++) {
      const chunk = rest.slice(i * size, (i + 1) * size);
      if (!chunk.length) break;
      out.push(...priority, ...chunk);
    }
    return out;
  }

  class BreakingTicker extends HTMLElement {
    static get observedAttributes() {
      return [...FILTER_ATTRS, "lang", "mode", "label", "short-label", "order", "push-worker",
        ...Object.values(NUMBERS).map((n) => n[0])];
    }

    constructor() {
      super();
      this._items = [];
      this._nodes = new Map();
      this._running = [];
      this._updatedAt = new Map();
      this._currentId = null;
      this._nextId = null;
      this._cyclePos = -1;
      this._lastEventId = null;
      this._status = "idle";
      this._started = false;
      this._source = null;
      this._attempt = 0;
      this._retryTimer = null;
      this._clock = null;
      this._raf = null;
      this._shownMode = null;
      this._shownFor = 0;
      this._sinceRelative = 0;
      this._hover = false;
      this._focus = false;
      this._userPaused = false;
      this._wasPaused = false;
      this._onMessage = this._onMessage.bind(this);
      this._frame = this._frame.bind(this);

      const root = this.attachShadow({ mode: "open" });
      adoptStyles(root);
      const bar = this._el("div", "bar");
      bar.setAttribute("part", "bar");
      bar.setAttribute("role", "region");
      const label = this._el("span", "label");
      label.setAttribute("part", "label");
      label.setAttribute("aria-hidden", "true");
      const longLabel = this._el("span", "long");
      const shortLabel = this._el("span", "short");
      label.append(longLabel, shortLabel);
      const list = this._el("ul", "items");
      list.setAttribute("part", "items");
      const empty = this._el("li", "empty");
      list.appendChild(empty);
      const controls = this._el("div", "controls");
      controls.setAttribute("part", "controls");
      controls.id = "controls";
      const prev = this._button("prev ctl", "\u2039", () => this._jump(-1));
      const pause = this._button("pause ctl", "\u275a\u275a", () => this._togglePause());
      const next = this._button("next ctl", "\u203a", () => this._jump(1));
      const more = this._button("more", "\u22ef", () => this._toggleMenu());
      more.setAttribute("aria-controls", "controls");
      more.setAttribute("aria-expanded", "false");
      // Web Push opt-in, shown when the site names its service worker (push-worker="...").
      const push = this._button("push ctl", "\u{1F514}", () => this._subscribePush());
      push.hidden = true;
      push.setAttribute("aria-pressed", "false");
      controls.append(prev, pause, next, push, more);
      // Two regions: politeness is unreliable to switch on one live region.
      const polite = this._el("div", "sr-only");
      polite.setAttribute("aria-live", "polite");
      polite.setAttribute("aria-atomic", "true");
      const assertive = this._el("div", "sr-only");
      assertive.setAttribute("aria-live", "assertive");
      assertive.setAttribute("aria-atomic", "true");
      bar.append(label, list, controls, polite, assertive);
      root.appendChild(bar);
      this._ui = {
        bar, label, longLabel, shortLabel, list, empty, controls, prev, pause, next, more,
        push, polite, assertive,
      };

      bar.addEventListener("mouseenter", () => { this._hover = true; this._syncPause(); });
      bar.addEventListener("mouseleave", () => { this._hover = false; this._syncPause(); });
      bar.addEventListener("focusin", () => { this._focus = true; this._syncPause(); });
      bar.addEventListener("focusout", (e) => {
        this._focus = bar.contains(e.relatedTarget);
        this._syncPause();
      });
      this._motionQuery = window.matchMedia
        ? window.matchMedia("(prefers-reduced-motion: reduce)")
        : null;
      if (this._motionQuery && this._motionQuery.addEventListener) {
        this._motionQuery.addEventListener("change", () => this._render());
      }
    }

    // ---- public state -------------------------------------------------------------------

    get items() {
      return this._items.map((it) => ({ ...it }));
    }

    get order() {
      return this._order().map((it) => it.id);
    }

    get cycle() {
      return this._cycle();
    }

    get mode() {
      return this._mode();
    }

    get lastEventId() {
      return this._lastEventId;
    }

    get status() {
      return this._status;
    }

    get paused() {
      return this._isPaused();
    }

    // ---- lifecycle ----------------------------------------------------------------------

    connectedCallback() {
      this._started = true;
      this._applyLocale();
      this._render();
      this._connect();
      if (!this._clock) this._clock = setInterval(() => this._tick(), CLOCK_MS);
    }

    disconnectedCallback() {
      this._started = false;
      this._disconnect();
      clearInterval(this._clock);
      this._clock = null;
      this._clearCrawl();
    }

    attributeChangedCallback(name, oldValue, newValue) {
      // Upgrades report every attribute before connectedCallback: one connection, not several.
      if (oldValue === newValue || !this._started) return;
      this._applyLocale();
      if (!FILTER_ATTRS.has(name)) {
        // Presentation only: same items, shown anew.
        this._clearCrawl();
        this._shownMode = null;
        this._render();
        return;
      }
      // A new filter is a new ticker: drop state and start from a fresh snapshot.
      this._items = [];
      this._currentId = null;
      this._lastEventId = null;
      this._attempt = 0;
      this._render();
      this._connect();
    }

    // ---- configuration ------------------------------------------------------------------

    _editions() {
      return splitList(this.getAttribute("edition"));
    }

    _lang() {
      return (this.getAttribute("lang") || this._editions()[0] || "en").toLowerCase();
    }

    _strings() {
      const lang = this._lang();
      return STRINGS[lang] || STRINGS[lang.split("-")[0]] || STRINGS.en;
    }

    _num(key) {
      const [attr, fallback, min, max] = NUMBERS[key];
      const n = parseFloat(this.getAttribute(attr) || "");
      return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
    }

    // Reduced motion turns the crawl into the rotating mode.
    _mode() {
      const reduced = !!(this._motionQuery && this._motionQuery.matches);
      return this.getAttribute("mode") === "rotate" || reduced ? "rotate" : "crawl";
    }

    _base() {
      const attr = this.getAttribute("src-base");
      try {
        return attr ? new URL(attr, location.href).href.replace(/\/+$/, "") : SCRIPT_ORIGIN;
      } catch (_) {
        return SCRIPT_ORIGIN;
      }
    }

    _maxItems() {
      return Math.round(this._num("maxItems"));
    }

    _isPriority(item) {
      return item.pinned === true || urgencyOf(item) <= this._num("priorityUrgency");
    }

    _isFlash(item) {
      return urgencyOf(item) <= this._num("flashUrgency");
    }

    // Display order: pinned, then urgent (most urgent first), then the rest, newest first.
    _order() {
      if (this.getAttribute("order") === "newest") return this._items.slice();
      const rank = (it) => (it.pinned === true ? 0 : this._isPriority(it) ? 1 : 2);
      return this._items.slice().sort((a, b) =>
        rank(a) - rank(b) || (rank(a) === 1 ? urgencyOf(a) - urgencyOf(b) : 0) || byNewest(a, b));
    }

    _cycle() {
      const order = this._order();
      if (this.getAttribute("order") === "newest") return order.map((it) => it.id);
      const priority = order.filter((it) => this._isPriority(it));
      const rest = order.filter((it) => !this._isPriority(it));
      return interleave(priority, rest, Math.round(this._num("priorityPasses"))).map((it) => it.id);
    }

    _streamUrl() {
      const url = new URL(this._base() + "/v1/stream");
      const params = [
        ["edition", this._editions()],
        ["category", splitList(this.getAttribute("categories"))],
        ["region", splitList(this.getAttribute("regions"))],
      ];
      for (const [key, values] of params) {
        if (values.length) url.searchParams.set(key, values.join(","));
      }
      const maxUrgency = (this.getAttribute("max-urgency") || "").trim();
      if (maxUrgency) url.searchParams.set("max_urgency", maxUrgency);
      // The query param covers our own reconnects; EventSource's own retries send the header.
      if (this._lastEventId) url.searchParams.set("last_event_id", this._lastEventId);
      return url.href;
    }

    // Mirrors the server filter so a correction that moves an item out of this ticker drops it.
    _matches(item) {
      const editions = this._editions();
      if (editions.length && !editions.includes(item.edition)) return false;
      const cats = splitList(this.getAttribute("categories"));
      if (cats.length && !(item.categories || []).some((c) => cats.includes(c))) return false;
      const regions = splitList(this.getAttribute("regions"));
      if (regions.length && !(item.regions || []).some((r) => regions.includes(r))) return false;
      const max = parseInt(this.getAttribute("max-urgency") || "", 10);
      if (max > 0 && typeof item.urgency === "number" && item.urgency > max) return false;
      return true;
    }

    // ---- connection ---------------------------------------------------------------------

    _connect() {
      this._disconnect();
      if (typeof EventSource !== "function") {
        this._setStatus("unsupported");
        return;
      }
      let source;
      try {
        source = new EventSource(this._streamUrl());
      } catch (_) {
        this._scheduleReconnect();
        return;
      }
      this._source = source;
      this._setStatus("connecting");
      source.onopen = () => {
        if (source === this._source) this._setStatus("open");
      };
      for (const type of EVENT_TYPES) source.addEventListener(type, this._onMessage);
      source.onmessage = this._onMessage;
      source.onerror = () => {
        if (source !== this._source) return;
        if (source.readyState === EventSource.CLOSED) {
          // The browser gave up (HTTP error, wrong content type): retry ourselves.
          this._disconnect();
          this._scheduleReconnect();
        } else {
          this._setStatus("reconnecting");
        }
      };
    }

    _disconnect() {
      clearTimeout(this._retryTimer);
      this._retryTimer = null;
      if (this._source) {
        this._source.close();
        this._source = null;
      }
    }

    _scheduleReconnect() {
      this._setStatus("reconnecting");
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this._attempt);
      this._attempt += 1;
      // Full jitter: a restarted server is not met by every reader at the same instant.
      const delay = ceiling / 2 + Math.random() * (ceiling / 2);
      this._retryTimer = setTimeout(() => {
        this._retryTimer = null;
        if (this.isConnected) this._connect();
      }, delay);
    }

    _onMessage(event) {
      if (event.target !== this._source) return;
      let envelope;
      try {
        envelope = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (!envelope || typeof envelope !== "object") return;
      this._attempt = 0;
      const id = event.lastEventId || envelope.id;
      if (id) this._lastEventId = String(id);
      this._apply(envelope.type || event.type, envelope);
    }

    // ---- state --------------------------------------------------------------------------

    _apply(type, envelope) {
      let announce = null;
      let event = null;
      switch (type) {
        case "snapshot": {
          const items = Array.isArray(envelope.items) ? envelope.items : [];
          this._items = items.filter((it) => it && it.id).sort(byNewest);
          // Corrections made shortly before this reader arrived are marked too.
          for (const it of this._items) {
            const at = Date.parse(it.updated_at || "");
            if ((it.version || 1) > 1 && !Number.isNaN(at) && !this._updatedAt.has(it.id)) {
              this._updatedAt.set(it.id, Math.min(at, Date.now()));
            }
          }
          break;
        }
        case "item.published":
        case "item.updated": {
          const item = envelope.item;
          if (!item || !item.id) return;
          const at = this._items.findIndex((it) => it.id === item.id);
          const before = at >= 0 ? this._items[at] : null;
          if (before && (before.version || 0) > (item.version || 0)) return;
          if (!this._matches(item)) {
            if (before) event = ["ticker-retract", { id: item.id, type, reason: "filter" }];
            this._remove(item.id);
            break;
          }
          if (before) {
            this._items[at] = item; // corrections replace in place
          } else {
            this._items.push(item);
            this._items.sort(byNewest);
          }
          if (type === "item.published" && !before) {
            announce = item;
            event = ["ticker-item", { item: { ...item } }];
            this._arrive(item);
          } else if (type === "item.updated" && (item.version || 0) > (before ? before.version || 0 : 0)) {
            this._updatedAt.set(item.id, Date.now());
            event = ["ticker-update", {
              item: { ...item }, previous: before ? { ...before } : null,
              correction_note: item.correction_note || null,
            }];
            if (this._currentId !== item.id) this._nextId = item.id;
          }
          break;
        }
        case "item.retracted":
        case "item.expired": {
          const id = envelope.item && envelope.item.id;
          if (!id) return;
          const had = this._items.some((it) => it.id === id);
          this._remove(id);
          if (had) event = ["ticker-retract", { id, type, reason: envelope.reason || null }];
          break;
        }
        case "reset": {
          this._items = [];
          this._currentId = null;
          break;
        }
        default:
          return;
      }
      const max = this._maxItems();
      if (this._items.length > max) {
        // Trim the oldest routine items; priority items stay while they are live.
        const keep = new Set(this._order().slice(0, max).map((it) => it.id));
        for (const it of this._items.slice()) if (!keep.has(it.id)) this._remove(it.id);
      }
      this._render();
      if (announce) this._announce(announce);
      if (event) this._emit(event[0], event[1]);
      this._emit("ticker:update", { type, items: this.items, lastEventId: this._lastEventId });
    }

    // A flash interrupts at once, unless the reader paused or is on a link or button in the
    // bar; anything else new is shown next.
    _arrive(item) {
      if (this._isFlash(item) && !this._userPaused && !this._focus) {
        this._clearCrawl();
        this._currentId = item.id;
        this._nextId = null;
        this._shownFor = 0;
      } else if (this._currentId) {
        this._nextId = item.id;
      }
    }

    _remove(id) {
      const at = this._items.findIndex((it) => it.id === id);
      if (at < 0) return;
      const order = this._order().map((it) => it.id);
      this._items.splice(at, 1);
      this._updatedAt.delete(id);
      if (this._nextId === id) this._nextId = null;
      for (const run of this._running.slice()) if (run.id === id) this._dropRun(run);
      if (this._currentId === id) {
        const pos = order.indexOf(id);
        const rest = order.filter((x) => x !== id);
        this._currentId = rest.length ? rest[pos % rest.length] : null;
        this._shownFor = 0;
        const last = this._running[this._running.length - 1];
        if (this._mode() === "crawl") this._currentId = last ? last.id : this._currentId;
      }
    }

    _emit(name, detail) {
      this.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail }));
    }

    _emitState() {
      this._emit("ticker-state", { status: this._status, mode: this._mode(), paused: this.paused });
    }

    _setStatus(status) {
      if (this._status === status) return;
      this._status = status;
      this.setAttribute("data-status", status);
      this._emit("ticker:status", { status });
      this._emitState();
    }

    // ---- timing ---------------------------------------------------------------------------

    _isPaused() {
      return this._hover || this._focus || this._userPaused || document.hidden;
    }

    _syncPause() {
      const paused = this._isPaused();
      if (paused === this._wasPaused) return;
      this._wasPaused = paused;
      for (const run of this._running) {
        if (paused) run.anim.pause();
        else run.anim.play();
      }
      this._emitState();
    }

    _tick() {
      this._sinceRelative += CLOCK_MS;
      if (this._sinceRelative >= RELATIVE_REFRESH_MS) {
        this._sinceRelative = 0;
        this._refreshTimes();
      }
      const windowMs = this._num("updatedFor") * 1000;
      let expired = false;
      for (const [id, at] of this._updatedAt) {
        if (Date.now() - at >= windowMs) {
          this._updatedAt.delete(id);
          expired = true;
        }
      }
      if (expired) this._render();
      if (this._mode() !== "rotate" || this._isPaused() || this._items.length < 2) return;
      this._shownFor += CLOCK_MS;
      const current = this._items.find((it) => it.id === this._currentId);
      const dwell = current && this._isPriority(current) ? "priorityDwell" : "dwell";
      if (this._shownFor >= this._num(dwell) * 1000) this._step(1);
    }

    // Rotating mode: the next item in display order, or the one that just arrived.
    _step(delta) {
      const order = this._order().map((it) => it.id);
      if (!order.length) return;
      if (delta > 0 && this._nextId && order.includes(this._nextId)) {
        this._currentId = this._nextId;
      } else {
        const at = Math.max(0, order.indexOf(this._currentId));
        this._currentId = order[(at + delta + order.length) % order.length];
      }
      this._nextId = null;
      this._shownFor = 0;
      this._render();
    }

    // The buttons: in the crawl, the chosen headline starts at once.
    _jump(delta) {
      this._nextId = null;
      if (this._mode() === "rotate") {
        this._step(delta);
        return;
      }
      const order = this._order().map((it) => it.id);
      if (!order.length) return;
      const at = Math.max(0, order.indexOf(this._currentId));
      this._clearCrawl();
      this._currentId = order[(at + delta + order.length) % order.length];
      this._render();
    }

    _togglePause() {
      this._userPaused = !this._userPaused;
      this._syncPause();
      this._renderControls();
    }

    _toggleMenu() {
      const open = this._ui.controls.classList.toggle("open");
      this._ui.more.setAttribute("aria-expanded", String(open));
      this._ui.more.firstChild.textContent = open ? "\u2715" : "\u22ef";
    }

    // ---- crawl ----------------------------------------------------------------------------

    _pickNext(lastId) {
      const cycle = this._cycle();
      if (!cycle.length) return null;
      const hint = this._nextId;
      this._nextId = null;
      if (hint && cycle.includes(hint)) {
        this._cyclePos = cycle.indexOf(hint);
        return hint;
      }
      let pos = cycle[this._cyclePos] === lastId ? this._cyclePos : cycle.indexOf(lastId);
      pos = (pos + 1) % cycle.length;
      this._cyclePos = pos;
      return cycle[pos];
    }

    // One pass of one headline: it enters at the inline-end edge and leaves past the
    // inline-start edge at `speed` characters a second (a fresh start or a flash begins at
    // the start edge, held still for a moment). The next one follows a gap behind it.
    _launch(id, fromStart) {
      const item = this._items.find((it) => it.id === id);
      if (!item) return;
      const { list } = this._ui;
      const li = this._el("li", "item");
      this._fillItem(li, item);
      list.appendChild(li);
      const rtl = getComputedStyle(list).direction === "rtl";
      const viewport = list.clientWidth;
      const width = li.offsetWidth;
      const fontPx = parseFloat(getComputedStyle(li).fontSize) || 15;
      const chars = Math.max(1, Array.from(li.textContent).length);
      const pxPerSecond = Math.max(1, this._num("speed") * (width / chars));
      const start = fromStart ? 0 : viewport;
      const sign = rtl ? -1 : 1;
      const delay = fromStart ? CRAWL_HOLD_MS : 0;
      const anim = li.animate(
        [{ transform: `translateX(${sign * start}px)` }, { transform: `translateX(${-sign * width}px)` }],
        { duration: ((start + width) / pxPerSecond) * 1000, delay, easing: "linear", fill: "both" },
      );
      const gap = CRAWL_GAP_EM * fontPx;
      const lead = delay + (Math.max(0, start + width + gap - viewport) / pxPerSecond) * 1000;
      const run = { id, li, anim, lead: Math.max(1, lead) };
      anim.onfinish = () => this._dropRun(run);
      this._running.push(run);
      this._currentId = id;
      if (this._isPaused()) anim.pause();
    }

    _dropRun(run) {
      const at = this._running.indexOf(run);
      if (at >= 0) this._running.splice(at, 1);
      run.anim.onfinish = null;
      run.anim.cancel();
      run.li.remove();
    }

    _clearCrawl() {
      for (const run of this._running.slice()) this._dropRun(run);
      if (this._raf) cancelAnimationFrame(this._raf);
      this._raf = null;
    }

    _frame() {
      this._raf = null;
      if (!this._started || this._mode() !== "crawl") return;
      this._syncPause();
      if (!this._isPaused() && this._items.length) {
        const last = this._running[this._running.length - 1];
        if (!last || (last.anim.currentTime || 0) >= last.lead) {
          this._launch(this._pickNext(last ? last.id : this._currentId), false);
          this._renderChrome();
        }
      }
      this._raf = requestAnimationFrame(this._frame);
    }

    // ---- rendering ----------------------------------------------------------------------

    _el(tag, className) {
      const el = document.createElement(tag);
      if (className) el.className = className;
      return el;
    }

    // ---- Web Push opt-in (docs/webpush.md) -------------------------------------------------

    _syncPush() {
      const { push } = this._ui;
      const s = this._strings();
      const on = push.getAttribute("aria-pressed") === "true";
      push.hidden = !(this.getAttribute("push-worker") && "PushManager" in window);
      push.setAttribute("aria-label", on ? s.pushOn : s.push);
      push.title = on ? s.pushOn : s.push;
    }

    _pushScript() {
      // The page code lives in one file (ticker-push.js); the widget loads it on demand.
      if (window.TickerPush) return Promise.resolve(window.TickerPush);
      return new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = this._base() + "/static/ticker-push.js";
        script.onload = () => resolve(window.TickerPush);
        script.onerror = () => reject(new Error("ticker-push.js did not load"));
        document.head.appendChild(script);
      });
    }

    async _subscribePush() {
      const { push } = this._ui;
      const list = (name) => (this.getAttribute(name) || "").split(",").map((v) => v.trim())
        .filter(Boolean);
      try {
        const api = await this._pushScript();
        await api.subscribe({
          ticker: this._base(),
          worker: this.getAttribute("push-worker"),
          edition: (this.getAttribute("edition") || this._lang()).split(",")[0],
          maxUrgency: Number(this.getAttribute("push-max-urgency")) || 2,
          categories: list("categories").length ? list("categories") : undefined,
          regions: list("regions").length ? list("regions") : undefined,
        });
        push.setAttribute("aria-pressed", "true");
        this.dispatchEvent(new CustomEvent("ticker-push", { detail: { subscribed: true } }));
      } catch (err) {
        this.dispatchEvent(new CustomEvent("ticker-push", {
          detail: { subscribed: false, error: String(err && err.message || err) },
        }));
      }
      this._syncPush();
    }

    _button(className, glyph, onClick) {
      const b = this._el("button", className);
      b.type = "button";
      b.setAttribute("part", "button");
      const icon = this._el("span");
      icon.setAttribute("aria-hidden", "true");
      icon.textContent = glyph;
      b.appendChild(icon);
      b.addEventListener("click", onClick);
      return b;
    }

    _applyLocale() {
      const lang = this._lang();
      const s = this._strings();
      const { bar, longLabel, shortLabel, empty, prev, next, more } = this._ui;
      bar.setAttribute("lang", lang);
      bar.setAttribute("dir", RTL_LANGS.has(lang.split("-")[0]) ? "rtl" : "ltr");
      bar.setAttribute("aria-label", s.region);
      longLabel.textContent = this.getAttribute("label") || s.label;
      shortLabel.textContent = this.getAttribute("short-label") || s.short;
      empty.textContent = s.empty;
      for (const [button, text] of [[prev, s.prev], [next, s.next], [more, s.more]]) {
        button.setAttribute("aria-label", text);
        button.title = text;
      }
      this._syncPush();
      try {
        this._rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto", style: "short" });
        this._dtf = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
      } catch (_) {
        this._rtf = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "short" });
        this._dtf = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "short" });
      }
      this._renderControls();
    }

    _relative(ms) {
      // Clamped to the past: a server clock a little ahead must not print "in 2 min".
      const seconds = Math.min(0, Math.round((ms - Date.now()) / 1000));
      const abs = Math.abs(seconds);
      if (abs < 45) return this._rtf.format(0, "second");
      if (abs < 3600) return this._rtf.format(Math.round(seconds / 60), "minute");
      if (abs < 86400) return this._rtf.format(Math.round(seconds / 3600), "hour");
      return this._rtf.format(Math.round(seconds / 86400), "day");
    }

    _marked(item) {
      const at = this._updatedAt.get(item.id);
      return at != null && Date.now() - at < this._num("updatedFor") * 1000;
    }

    _itemKey(item) {
      return JSON.stringify([item.version, item.headline, item.url, item.urgency, item.pinned,
        item.correction_note, this._lang(), this._marked(item)]);
    }

    _fillItem(li, item) {
      li.textContent = "";
      li.className = "item";
      li.setAttribute("part", "item");
      li.dataset.id = item.id;
      li.dataset.urgency = String(item.urgency == null ? "" : item.urgency);
      li.toggleAttribute("data-pinned", item.pinned === true);
      const href = safeUrl(item.url, this._base());
      const headline = this._el(href ? "a" : "span", "headline");
      if (href) {
        headline.href = href;
        headline.rel = "noopener";
      }
      headline.setAttribute("part", "headline");
      headline.dir = "auto";
      headline.textContent = String(item.headline == null ? "" : item.headline);
      const parts = [headline];
      if (this._marked(item)) {
        const marker = this._el("span", "updated");
        marker.setAttribute("part", "updated");
        marker.textContent = this._strings().updated;
        parts.unshift(marker);
        if (item.correction_note) {
          const note = this._el("span", "note");
          note.setAttribute("part", "note");
          note.dir = "auto";
          note.textContent = String(item.correction_note);
          parts.push(note);
        }
      }
      const time = this._el("time", "time");
      time.setAttribute("part", "time");
      const ms = itemTime(item);
      if (ms) {
        time.dateTime = new Date(ms).toISOString();
        time.title = this._dtf.format(ms);
        time.textContent = this._relative(ms);
      }
      li.append(...parts, time);
      li._ticker = this._itemKey(item);
    }

    _render() {
      const mode = this._mode();
      const { bar } = this._ui;
      if (mode !== this._shownMode) {
        this._clearCrawl();
        for (const li of this._nodes.values()) li.remove();
        this._nodes.clear();
        this._shownMode = mode;
        bar.classList.toggle("crawl", mode === "crawl");
        this.setAttribute("data-mode", mode);
        if (this._started) this._emitState();
      }
      if (!this._items.some((it) => it.id === this._currentId)) {
        this._currentId = null;
        this._shownFor = 0;
      }
      if (mode === "rotate") this._renderRotate();
      else this._renderCrawl();
      this._renderChrome();
    }

    _renderRotate() {
      const { list, empty } = this._ui;
      const order = this._order();
      if (!this._currentId && order.length) this._currentId = order[0].id;
      const live = new Set(order.map((it) => it.id));
      for (const [id, li] of this._nodes) {
        if (!live.has(id)) {
          li.remove();
          this._nodes.delete(id);
        }
      }
      let before = empty.nextSibling;
      for (const item of order) {
        let li = this._nodes.get(item.id);
        if (!li) {
          li = this._el("li", "item");
          this._nodes.set(item.id, li);
        }
        if (li._ticker !== this._itemKey(item)) this._fillItem(li, item);
        li.hidden = item.id !== this._currentId;
        // Move only what is out of place, so a focused link is not pulled out of the tree.
        if (li !== before) list.insertBefore(li, before);
        before = li.nextSibling;
      }
    }

    _renderCrawl() {
      const live = new Set(this._items.map((it) => it.id));
      for (const run of this._running.slice()) if (!live.has(run.id)) this._dropRun(run);
      if (!this._running.length && this._items.length && this._started) {
        this._launch(this._currentId || this._pickNext(null), true);
      }
      if (!this._raf && this._started) this._raf = requestAnimationFrame(this._frame);
    }

    _renderChrome() {
      const { bar, empty } = this._ui;
      const current = this._items.find((it) => it.id === this._currentId);
      const hasItems = this._items.length > 0;
      empty.hidden = hasItems;
      bar.hidden = !hasItems && !this.hasAttribute("show-empty");
      bar.classList.toggle("urgent", !!current && urgencyOf(current) <= 2);
      this.toggleAttribute("data-empty", !hasItems);
      this._renderControls();
    }

    _renderControls() {
      const { prev, pause, next, more } = this._ui;
      const several = this._items.length > 1;
      prev.hidden = next.hidden = !several;
      // A single crawling headline still moves: it can be paused.
      pause.hidden = !(several || (this._items.length && this._mode() === "crawl"));
      more.hidden = pause.hidden;
      const s = this._strings();
      const label = this._userPaused ? s.play : s.pause;
      pause.setAttribute("aria-label", label);
      pause.title = label;
      pause.setAttribute("aria-pressed", String(this._userPaused));
      pause.firstChild.textContent = this._userPaused ? "\u25b6" : "\u275a\u275a";
    }

    _refreshTimes() {
      for (const time of this._ui.list.querySelectorAll("time")) {
        if (time.dateTime) time.textContent = this._relative(Date.parse(time.dateTime));
      }
    }

    _announce(item) {
      const region = this._isFlash(item) ? this._ui.assertive : this._ui.polite;
      // Cleared first so the same words said twice are announced twice.
      region.textContent = "";
      const text = this._strings().label + ": " + String(item.headline || "");
      requestAnimationFrame(() => { region.textContent = text; });
    }
  }

  customElements.define("breaking-ticker", BreakingTicker);
})();
