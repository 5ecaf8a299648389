/*!
 * Ticker <breaking-ticker> web component. No dependencies.
 *
 *   <script src="https://ticker.example/embed.js" defer></script>
 *   <breaking-ticker edition="en" categories="politics" regions="mena" max-urgency="3"></breaking-ticker>
 *
 * Attributes: edition, categories, regions, max-urgency (filters, comma lists), src-base (service
 * base URL, defaults to this script's origin), lang (defaults to the edition), max-items,
 * show-empty (render the bar with a placeholder when nothing is live).
 * Theme with CSS custom properties: --ticker-bg, --ticker-fg, --ticker-label-bg, --ticker-label-fg,
 * --ticker-urgent-bg, --ticker-font, --ticker-font-size, --ticker-height, --ticker-radius,
 * --ticker-focus.
 * State for scripts and tests: el.items (copies, newest first), el.lastEventId, el.status,
 * and a `ticker:update` event (bubbles, composed) after every applied change.
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
  const ROTATE_MS = 7000;
  const CLOCK_MS = 1000;
  const RELATIVE_REFRESH_MS = 15000;
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const RTL_LANGS = new Set(["ar", "fa", "he", "ur", "ps", "ckb", "dv", "yi"]);

  const STRINGS = {
    en: {
      label: "BREAKING", region: "Breaking news", prev: "Previous headline",
      next: "Next headline", pause: "Pause headlines", play: "Resume headlines",
      empty: "No breaking news right now",
    },
    ar: {
      label: "عاجل", region: "أخبار عاجلة", prev: "الخبر السابق", next: "الخبر التالي",
      pause: "إيقاف تبديل الأخبار", play: "استئناف تبديل الأخبار", empty: "لا أخبار عاجلة الآن",
    },
    es: {
      label: "ÚLTIMA HORA", region: "Noticias de última hora", prev: "Titular anterior",
      next: "Titular siguiente", pause: "Pausar titulares", play: "Reanudar titulares",
      empty: "No hay noticias de última hora",
    },
  };

  const CSS = `
    :host { display: block; contain: content; container-type: inline-size; }
    :host([hidden]) { display: none; }
    /* all: initial on the inner bar: the host page's inherited styles stop here. */
    .bar {
      all: initial;
      box-sizing: border-box;
      display: flex;
      align-items: stretch;
      width: 100%;
      min-height: var(--ticker-height, 2.75rem);
      background: var(--ticker-bg, #141414);
      color: var(--ticker-fg, #ffffff);
      font-family: var(--ticker-font, system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
        "Noto Sans Arabic", Tahoma, Arial, sans-serif);
      font-size: var(--ticker-font-size, 15px);
      line-height: 1.4;
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
      font-weight: 800;
      letter-spacing: 0.06em;
      text-transform: uppercase;
      white-space: nowrap;
    }
    /* Letter spacing breaks Arabic joining. */
    .bar[dir="rtl"] .label { letter-spacing: 0; }
    .bar.urgent .label { animation: ticker-flash 0.9s ease-in-out 4; }
    .items {
      flex: 1 1 auto;
      min-width: 0;
      display: flex;
      align-items: center;
      margin: 0;
      padding: 0 0.85em;
      list-style: none;
    }
    .item {
      display: flex;
      align-items: baseline;
      gap: 0.65em;
      min-width: 0;
      animation: ticker-in 0.35s ease-out;
    }
    .item[hidden] { display: none; }
    .headline {
      min-width: 0;
      overflow: hidden;
      text-overflow: ellipsis;
      white-space: nowrap;
      unicode-bidi: isolate;
      color: inherit;
      font-weight: 600;
      text-decoration: none;
    }
    a.headline:hover { text-decoration: underline; }
    .time {
      flex: none;
      font-size: 0.85em;
      opacity: 0.8;
      white-space: nowrap;
      unicode-bidi: isolate;
    }
    .empty { opacity: 0.75; font-style: italic; }
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
      opacity: 0.8;
    }
    button:hover { opacity: 1; background: rgba(255, 255, 255, 0.12); }
    button[hidden] { display: none; }
    a:focus-visible, button:focus-visible {
      outline: 2px solid var(--ticker-focus, #ffbf47);
      outline-offset: 2px;
      opacity: 1;
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
    /* Phones: the headline gets the room, wrapping to two lines; the time gives way. */
    @container (max-width: 520px) {
      .label { padding: 0 0.6em; letter-spacing: 0.02em; font-size: 0.85em; }
      .items { padding: 0.35em 0.6em; }
      .item { flex: 1 1 auto; }
      .headline {
        display: -webkit-box;
        -webkit-box-orient: vertical;
        -webkit-line-clamp: 2;
        flex: 1 1 auto;
        white-space: normal;
        line-height: 1.3;
      }
      .time { display: none; }
      .controls { padding: 0 0.15em; }
      button { min-width: 1.6em; }
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

  class BreakingTicker extends HTMLElement {
    static get observedAttributes() {
      return ["edition", "categories", "regions", "max-urgency", "src-base", "lang"];
    }

    constructor() {
      super();
      this._items = [];
      this._nodes = new Map();
      this._currentId = null;
      this._lastEventId = null;
      this._status = "idle";
      this._started = false;
      this._source = null;
      this._attempt = 0;
      this._retryTimer = null;
      this._clock = null;
      this._shownFor = 0;
      this._sinceRelative = 0;
      this._hover = false;
      this._focus = false;
      this._userPaused = false;
      this._onMessage = this._onMessage.bind(this);

      const root = this.attachShadow({ mode: "open" });
      adoptStyles(root);
      const bar = this._el("div", "bar");
      bar.setAttribute("part", "bar");
      bar.setAttribute("role", "region");
      const label = this._el("span", "label");
      label.setAttribute("part", "label");
      label.setAttribute("aria-hidden", "true");
      const list = this._el("ul", "items");
      list.setAttribute("part", "items");
      const empty = this._el("li", "empty");
      list.appendChild(empty);
      const controls = this._el("div", "controls");
      const prev = this._button("prev", "\u2039", () => this._step(-1));
      const pause = this._button("pause", "\u275a\u275a", () => this._togglePause());
      const next = this._button("next", "\u203a", () => this._step(1));
      controls.append(prev, pause, next);
      // Two regions: politeness is unreliable to switch on one live region.
      const polite = this._el("div", "sr-only");
      polite.setAttribute("aria-live", "polite");
      polite.setAttribute("aria-atomic", "true");
      const assertive = this._el("div", "sr-only");
      assertive.setAttribute("aria-live", "assertive");
      assertive.setAttribute("aria-atomic", "true");
      bar.append(label, list, controls, polite, assertive);
      root.appendChild(bar);
      this._ui = { bar, label, list, empty, controls, prev, pause, next, polite, assertive };

      bar.addEventListener("mouseenter", () => { this._hover = true; });
      bar.addEventListener("mouseleave", () => { this._hover = false; });
      bar.addEventListener("focusin", () => { this._focus = true; });
      bar.addEventListener("focusout", (e) => {
        this._focus = bar.contains(e.relatedTarget);
      });
      this._motionQuery = window.matchMedia
        ? window.matchMedia("(prefers-reduced-motion: reduce)")
        : null;
    }

    // ---- public state -------------------------------------------------------------------

    get items() {
      return this._items.map((it) => ({ ...it }));
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
    }

    attributeChangedCallback(name, oldValue, newValue) {
      // Upgrades report every attribute before connectedCallback: one connection, not several.
      if (oldValue === newValue || !this._started) return;
      this._applyLocale();
      if (name === "lang") {
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

    _base() {
      const attr = this.getAttribute("src-base");
      try {
        return attr ? new URL(attr, location.href).href.replace(/\/+$/, "") : SCRIPT_ORIGIN;
      } catch (_) {
        return SCRIPT_ORIGIN;
      }
    }

    _maxItems() {
      const n = parseInt(this.getAttribute("max-items") || "", 10);
      return n > 0 ? n : 10;
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
      switch (type) {
        case "snapshot": {
          const items = Array.isArray(envelope.items) ? envelope.items : [];
          this._items = items.filter((it) => it && it.id).sort(byNewest);
          if (!this._items.some((it) => it.id === this._currentId)) {
            this._currentId = this._items.length ? this._items[0].id : null;
            this._shownFor = 0;
          }
          break;
        }
        case "item.published":
        case "item.updated": {
          const item = envelope.item;
          if (!item || !item.id) return;
          const at = this._items.findIndex((it) => it.id === item.id);
          if (at >= 0 && (this._items[at].version || 0) > (item.version || 0)) return;
          if (!this._matches(item)) {
            this._remove(item.id);
            break;
          }
          if (at >= 0) {
            this._items[at] = item; // corrections replace in place
          } else {
            this._items.push(item);
            this._items.sort(byNewest);
            if (type === "item.published") announce = item;
          }
          if (announce && !this._isPaused()) {
            this._currentId = item.id;
            this._shownFor = 0;
          }
          break;
        }
        case "item.retracted":
        case "item.expired": {
          if (envelope.item && envelope.item.id) this._remove(envelope.item.id);
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
        this._items = this._items.slice(0, max);
        if (!this._items.some((it) => it.id === this._currentId)) {
          this._currentId = this._items[0].id;
        }
      }
      this._render();
      if (announce) this._announce(announce);
      this.dispatchEvent(new CustomEvent("ticker:update", {
        bubbles: true,
        composed: true,
        detail: { type, items: this.items, lastEventId: this._lastEventId },
      }));
    }

    _remove(id) {
      const at = this._items.findIndex((it) => it.id === id);
      if (at < 0) return;
      this._items.splice(at, 1);
      if (this._currentId === id) {
        const next = this._items[Math.min(at, this._items.length - 1)];
        this._currentId = next ? next.id : null;
        this._shownFor = 0;
      }
    }

    _setStatus(status) {
      if (this._status === status) return;
      this._status = status;
      this.setAttribute("data-status", status);
      this.dispatchEvent(new CustomEvent("ticker:status", {
        bubbles: true, composed: true, detail: { status },
      }));
    }

    // ---- rotation -----------------------------------------------------------------------

    _reducedMotion() {
      return !!(this._motionQuery && this._motionQuery.matches);
    }

    _isPaused() {
      return this._hover || this._focus || this._userPaused || document.hidden;
    }

    _tick() {
      this._sinceRelative += CLOCK_MS;
      if (this._sinceRelative >= RELATIVE_REFRESH_MS) {
        this._sinceRelative = 0;
        this._refreshTimes();
      }
      // Auto-advancing text is motion: under reduced motion readers step with the buttons.
      if (this._isPaused() || this._reducedMotion() || this._items.length < 2) return;
      this._shownFor += CLOCK_MS;
      if (this._shownFor >= ROTATE_MS) this._step(1);
    }

    _step(delta) {
      const n = this._items.length;
      if (!n) return;
      const at = Math.max(0, this._items.findIndex((it) => it.id === this._currentId));
      this._currentId = this._items[(at + delta + n) % n].id;
      this._shownFor = 0;
      this._render();
    }

    _togglePause() {
      this._userPaused = !this._userPaused;
      this._renderControls();
    }

    // ---- rendering ----------------------------------------------------------------------

    _el(tag, className) {
      const el = document.createElement(tag);
      if (className) el.className = className;
      return el;
    }

    _button(className, glyph, onClick) {
      const b = this._el("button", className);
      b.type = "button";
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
      const { bar, label, empty, prev, next } = this._ui;
      bar.setAttribute("lang", lang);
      bar.setAttribute("dir", RTL_LANGS.has(lang.split("-")[0]) ? "rtl" : "ltr");
      bar.setAttribute("aria-label", s.region);
      label.textContent = s.label;
      empty.textContent = s.empty;
      prev.setAttribute("aria-label", s.prev);
      prev.title = s.prev;
      next.setAttribute("aria-label", s.next);
      next.title = s.next;
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

    _fillItem(li, item) {
      li.textContent = "";
      li.className = "item";
      li.dataset.id = item.id;
      li.dataset.urgency = String(item.urgency == null ? "" : item.urgency);
      const href = safeUrl(item.url, this._base());
      const headline = this._el(href ? "a" : "span", "headline");
      if (href) {
        headline.href = href;
        headline.rel = "noopener";
      }
      headline.setAttribute("part", "headline");
      headline.dir = "auto";
      headline.textContent = String(item.headline == null ? "" : item.headline);
      const time = this._el("time", "time");
      const ms = itemTime(item);
      if (ms) {
        time.dateTime = new Date(ms).toISOString();
        time.title = this._dtf.format(ms);
        time.textContent = this._relative(ms);
      }
      li.append(headline, time);
      li._ticker = { version: item.version, headline: item.headline, url: item.url,
        urgency: item.urgency, lang: this._lang() };
    }

    _render() {
      const { bar, list, empty } = this._ui;
      const live = new Set(this._items.map((it) => it.id));
      for (const [id, li] of this._nodes) {
        if (!live.has(id)) {
          li.remove();
          this._nodes.delete(id);
        }
      }
      let before = empty.nextSibling;
      for (const item of this._items) {
        let li = this._nodes.get(item.id);
        if (!li) {
          li = this._el("li", "item");
          this._nodes.set(item.id, li);
        }
        const known = li._ticker;
        if (!known || known.version !== item.version || known.headline !== item.headline ||
            known.url !== item.url || known.urgency !== item.urgency ||
            known.lang !== this._lang()) {
          this._fillItem(li, item);
        }
        li.hidden = item.id !== this._currentId;
        // Move only what is out of place, so a focused link is not pulled out of the tree.
        if (li !== before) list.insertBefore(li, before);
        before = li.nextSibling;
      }
      const current = this._items.find((it) => it.id === this._currentId);
      const hasItems = this._items.length > 0;
      empty.hidden = hasItems;
      bar.hidden = !hasItems && !this.hasAttribute("show-empty");
      bar.classList.toggle("urgent", !!current && current.urgency <= 2);
      this.toggleAttribute("data-empty", !hasItems);
      this._renderControls();
    }

    _renderControls() {
      const { prev, pause, next } = this._ui;
      const several = this._items.length > 1;
      prev.hidden = next.hidden = pause.hidden = !several;
      const s = this._strings();
      const label = this._userPaused ? s.play : s.pause;
      pause.setAttribute("aria-label", label);
      pause.title = label;
      pause.setAttribute("aria-pressed", String(this._userPaused));
      pause.firstChild.textContent = this._userPaused ? "\u25b6" : "\u275a\u275a";
    }

    _refreshTimes() {
      for (const li of this._nodes.values()) {
        const time = li.querySelector("time");
        if (time && time.dateTime) time.textContent = this._relative(Date.parse(time.dateTime));
      }
    }

    _announce(item) {
      const region = item.urgency === 1 ? this._ui.assertive : this._ui.polite;
      // Cleared first so the same words said twice are announced twice.
      region.textContent = "";
      const text = this._strings().label + ": " + String(item.headline || "");
      requestAnimationFrame(() => { region.textContent = text; });
    }
  }

  customElements.define("breaking-ticker", BreakingTicker);
})();
