// Ticker desk: editors sign in, post, and work one live board of every queued, embargoed,
// held and live item of the editions they may touch. Served under a CSP without inline
// script; every text from the service goes into the page with textContent, never as markup.
(() => {
  "use strict";

  const BOARD = new Set(["queued", "embargoed", "held", "published"]);
  const WAIT = "wait=3"; // Prefer: answer with the decision when the worker takes it in time
  // Edition names in their own language; other editions are named by the browser.
  const EDITION_NAMES = { en: "English", ar: "العربية", es: "Español", fr: "Français" };
  const $ = (sel, root = document) => root.querySelector(sel);

  const state = {
    me: null, // {name, role, scopes, editions, csrf_token, principal}
    items: new Map(), // id -> desk view
    matched: new Map(), // id of an item a held one repeats -> its headline
    feed: null,
    filters: { edition: "", section: "", region: "", urgency: 9 },
  };
  const allEditions = (document.body.dataset.editions || "en").split(",").filter(Boolean);

  // ---- names ----------------------------------------------------------------------------

  function editionName(code) {
    if (EDITION_NAMES[code]) return EDITION_NAMES[code];
    try {
      return new Intl.DisplayNames([code], { type: "language" }).of(code) || code;
    } catch (_) {
      return code;
    }
  }

  // IPTC ninjs: 1-2 flash, 3-4 urgent, 5 and up routine.
  function urgencyName(n) {
    return n <= 2 ? "flash" : n <= 4 ? "urgent" : "routine";
  }

  function fillUrgency(select, withAny) {
    select.textContent = "";
    if (withAny) addOption(select, "9", "any");
    for (let n = 1; n <= 9; n++) {
      if (withAny && n === 9) continue;
      addOption(select, String(n), (withAny ? "up to " : "") + urgencyName(n) + " " + n);
    }
  }

  function addOption(select, value, text, lang) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    if (lang) option.lang = lang;
    select.appendChild(option);
  }

  // ---- API ------------------------------------------------------------------------------

  async function api(method, path, body, extraHeaders) {
    const headers = { Accept: "application/json", ...(extraHeaders || {}) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.me) headers["X-CSRF-Token"] = state.me.csrf_token;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "same-origin",
      });
    } catch (err) {
      return { ok: false, status: 0, data: { error: { message: "Network error: " + err.message } } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (response.status === 401 && state.me && path !== "/desk/login") signedOut("Your session has ended; sign in again.");
    return { ok: response.ok, status: response.status, data };
  }

  function errorOf(result) {
    const err = result.data && result.data.error;
    if (err && typeof err === "object") return { field: err.field || null, message: err.message || err.code };
    return { field: null, message: "Request failed (HTTP " + result.status + ")." };
  }

  const can = (scope) => !!state.me && (state.me.scopes.includes(scope) || state.me.scopes.includes("admin"));
  const myEditions = () => (state.me && state.me.editions) || allEditions;

  // ---- sign-in --------------------------------------------------------------------------

  function showSignIn(message) {
    $("#desk").hidden = true;
    $("#whoami").hidden = true;
    $("#sign-out").hidden = true;
    $("#signin").hidden = false;
    $("#signin-status").textContent = message || "";
    api("GET", "/desk/sign-in-options").then((r) => ($("#sso").hidden = !(r.ok && r.data && r.data.oidc)));
    $("#s-name").focus();
  }

  function signedOut(message) {
    state.me = null;
    if (state.feed) state.feed.close();
    state.feed = null;
    state.items.clear();
    $("#board").textContent = "";
    showSignIn(message);
  }

  async function start() {
    const result = await api("GET", "/desk/me");
    if (!result.ok) {
      showSignIn("");
      return;
    }
    enterDesk(result.data);
  }

  function enterDesk(me) {
    state.me = me;
    $("#signin").hidden = true;
    $("#desk").hidden = false;
    const who = $("#whoami");
    who.textContent = me.name + " · " + me.role + (me.editions ? " · " + me.editions.map(editionName).join(", ") : "");
    who.hidden = false;
    $("#sign-out").hidden = false;
    const editions = myEditions();
    for (const select of [$("#f-edition"), $("#b-edition")]) {
      select.textContent = "";
      if (select.id === "b-edition" && editions.length > 1) addOption(select, "", "all");
      for (const code of editions) addOption(select, code, editionName(code) + " (" + code + ")", code);
    }
    state.filters.edition = $("#b-edition").value;
    syncPreview();
    $("#item-form").hidden = !can("publish");
    follow();
    $("#f-headline").focus();
  }

  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const status = $("#signin-status");
    status.textContent = "";
    const body = { name: form.elements.name.value.trim(), password: form.elements.password.value };
    const result = await api("POST", "/desk/login", body);
    form.elements.password.value = "";
    if (!result.ok) {
      status.textContent = errorOf(result).message;
      form.elements.password.focus();
      return;
    }
    enterDesk(result.data);
  });

  $("#sign-out").addEventListener("click", async () => {
    await api("POST", "/desk/logout");
    signedOut("Signed out.");
  });

  // ---- the live board -------------------------------------------------------------------

  function follow() {
    if (state.feed) state.feed.close();
    const feed = new EventSource("/desk/feed");
    state.feed = feed;
    const status = $("#feed-status");
    feed.addEventListener("open", () => (status.textContent = "Live"));
    feed.addEventListener("snapshot", (e) => {
      const data = JSON.parse(e.data);
      state.items.clear();
      for (const view of data.items) state.items.set(view.id, view);
      renderBoard();
    });
    feed.addEventListener("status", (e) => {
      const view = JSON.parse(e.data);
      if (BOARD.has(view.status)) state.items.set(view.id, view);
      else state.items.delete(view.id);
      renderBoard();
    });
    feed.addEventListener("signed-out", () => signedOut("Your session has ended; sign in again."));
    feed.addEventListener("error", async () => {
      status.textContent = "Reconnecting...";
      if (feed.readyState === EventSource.CLOSED && state.feed === feed) {
        // A refused reconnect: the session is gone, or the service is down for a while.
        const me = await api("GET", "/desk/me");
        if (me.ok) setTimeout(() => state.feed === feed && follow(), 2000);
      }
    });
  }

  function visible(view) {
    const item = view.item || {};
    const f = state.filters;
    if (f.edition && item.edition !== f.edition) return false;
    if (f.section && !(item.categories || []).includes(f.section)) return false;
    if (f.region && !(item.regions || []).includes(f.region)) return false;
    return (item.urgency || 5) <= f.urgency;
  }

  function renderBoard() {
    const board = $("#board");
    const views = [...state.items.values()].filter(visible);
    // Held first (they wait on an editor), then by urgency, then newest first.
    const rank = { held: 0, queued: 1, embargoed: 2, published: 3 };
    views.sort(
      (a, b) =>
        rank[a.status] - rank[b.status] ||
        Number(!!(b.item || {}).pinned) - Number(!!(a.item || {}).pinned) ||
        ((a.item || {}).urgency || 5) - ((b.item || {}).urgency || 5) ||
        String(b.created_at || "").localeCompare(String(a.created_at || ""))
    );
    const keep = new Set(views.map((v) => "card-" + v.id));
    for (const li of [...board.children]) if (!keep.has(li.id)) li.remove();
    let before = board.firstElementChild;
    for (const view of views) {
      const li = card(view);
      if (li !== before) board.insertBefore(li, before);
      else before = before.nextElementSibling;
    }
    $("#board-empty").hidden = views.length > 0;
    $("#board-count").textContent = "(" + views.length + ")";
  }

  function card(view) {
    let li = document.getElementById("card-" + view.id);
    if (!li) {
      li = $("#card-template").content.firstElementChild.cloneNode(true);
      li.id = "card-" + view.id;
      li.dataset.id = view.id;
      fillUrgency($('[data-role="correct-form"] select[name="urgency"]', li), false);
      wire(li, view.id);
    }
    const item = view.item || {};
    const urgency = item.urgency || 5;
    li.dataset.status = view.status;
    li.dataset.urgencyName = urgencyName(urgency);
    const badge = $('[data-role="status"]', li);
    badge.textContent = view.status + (view.status === "published" && view.version > view.published_version ? " · change pending" : "");
    badge.className = "badge status-" + view.status;
    $('[data-role="urgency"]', li).textContent = urgencyName(urgency) + " " + urgency;
    const edition = $('[data-role="edition"]', li);
    edition.textContent = editionName(item.edition);
    edition.lang = item.edition || "";
    $('[data-role="pinned"]', li).hidden = !item.pinned;
    $('[data-role="headline"]', li).textContent = item.headline || "";
    $('[data-role="summary"]', li).textContent = item.summary || "";
    const meta = [];
    if ((item.categories || []).length) meta.push(item.categories.join(", "));
    if ((item.regions || []).length) meta.push(item.regions.join(", "));
    if (view.submitted_by) meta.push("by " + view.submitted_by);
    if (view.status === "embargoed" && item.embargoed_until) meta.push("embargoed until " + clock(item.embargoed_until));
    if (item.expires_at) meta.push("expires " + clock(item.expires_at));
    meta.push("v" + (view.version || 1));
    $('[data-role="meta"]', li).textContent = meta.join(" · ");
    renderHeld(li, view);
    const live = view.status === "published";
    const show = (action, yes) => ($('[data-action="' + action + '"]', li).hidden = !yes);
    show("publish-anyway", view.status === "held" && can("publish"));
    show("publish-now", view.status === "embargoed" && can("correct"));
    show("correct", can("correct"));
    show("pin", live && can("correct"));
    $('[data-action="pin"]', li).textContent = item.pinned ? "Unpin" : "Pin";
    show("extend", live && can("correct"));
    show("end", live && can("correct"));
    show("retract", can("retract"));
    return li;
  }

  function renderHeld(li, view) {
    const box = $('[data-role="held"]', li);
    box.hidden = view.status !== "held";
    if (box.hidden) return;
    $('[data-role="held-new"]', li).textContent = (view.item || {}).headline || "";
    const old = $('[data-role="held-old"]', li);
    const original = view.duplicate_of;
    // The matched item is usually on the board already; otherwise ask for it.
    const onBoard = ((state.items.get(original) || {}).item || {}).headline;
    if (onBoard) state.matched.set(original, onBoard);
    old.textContent = state.matched.get(original) || original || "";
    if (original && !state.matched.has(original)) {
      api("GET", "/v1/items/" + encodeURIComponent(original)).then((r) => {
        if (r.ok && r.data && r.data.item) {
          state.matched.set(original, r.data.item.headline);
          old.textContent = r.data.item.headline;
        }
      });
    }
    const match = view.match || {};
    const why = [];
    if (match.reason) why.push(String(match.reason));
    if (typeof match.score === "number") why.push("score " + match.score);
    if ((match.shared || []).length) why.push("shared: " + match.shared.join(", "));
    if ((match.differing || []).length) why.push("differing: " + match.differing.join(", "));
    $('[data-role="held-why"]', li).textContent = why.join(" · ");
  }

  function clock(iso) {
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? iso : t.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  }

  // ---- card actions ---------------------------------------------------------------------

  function splitList(value) {
    return value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  }

  function wire(li, id) {
    const correctForm = $('[data-role="correct-form"]', li);
    const retractForm = $('[data-role="retract-form"]', li);
    const errorSlot = $('[data-role="error"]', li);
    const historyList = $('[data-role="history"]', li);
    const view = () => state.items.get(id) || { item: {} };

    async function change(method, path, body) {
      errorSlot.textContent = "";
      const result = await api(method, path, body, { Prefer: WAIT });
      if (!result.ok) errorSlot.textContent = errorOf(result).message;
      else if (result.data && result.data.status) {
        if (BOARD.has(result.data.status)) state.items.set(id, { ...view(), ...result.data });
        else state.items.delete(id);
        renderBoard();
      }
      return result;
    }
    const patch = (body) => change("PATCH", "/v1/items/" + encodeURIComponent(id), body);

    li.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const item = view().item || {};
      switch (button.dataset.action) {
        case "correct": {
          const f = correctForm.elements;
          f.headline.value = item.headline || "";
          f.summary.value = item.summary || "";
          f.urgency.value = String(item.urgency || 5);
          f.url.value = item.url || "";
          f.categories.value = (item.categories || []).join(", ");
          f.regions.value = (item.regions || []).join(", ");
          f.correction_note.value = "";
          retractForm.hidden = true;
          correctForm.hidden = false;
          f.headline.focus();
          break;
        }
        case "retract":
          correctForm.hidden = true;
          retractForm.hidden = false;
          retractForm.elements.reason.focus();
          break;
        case "cancel":
          correctForm.hidden = true;
          retractForm.hidden = true;
          li.focus();
          break;
        case "pin":
          await patch({ pinned: !item.pinned });
          break;
        case "extend": {
          const from = Math.max(Date.parse(item.expires_at) || Date.now(), Date.now());
          await patch({ expires_at: new Date(from + 3600 * 1000).toISOString() });
          break;
        }
        case "end":
          await patch({ expires_at: new Date().toISOString() });
          break;
        case "publish-now":
          await patch({ embargoed_until: new Date().toISOString() });
          break;
        case "publish-anyway":
          await change("POST", "/v1/items/" + encodeURIComponent(id) + "/publish", {});
          break;
        case "history":
          await toggleHistory();
          break;
      }
    });

    async function toggleHistory() {
      if (!historyList.hidden) {
        historyList.hidden = true;
        return;
      }
      const result = await api("GET", "/v1/items/" + encodeURIComponent(id) + "/history");
      if (!result.ok) {
        errorSlot.textContent = errorOf(result).message;
        return;
      }
      historyList.textContent = "";
      for (const entry of result.data.history) {
        const row = document.createElement("li");
        const parts = [clock(entry.at), entry.by, entry.action];
        if (entry.reason) parts.push("reason: " + entry.reason);
        if (entry.duplicate_of) parts.push("of " + entry.duplicate_of);
        for (const [name, c] of Object.entries(entry.changes || {})) {
          parts.push(name + ": " + JSON.stringify(c.old) + " → " + JSON.stringify(c.new));
        }
        row.textContent = parts.join(" · ");
        row.dir = "auto";
        historyList.appendChild(row);
      }
      historyList.hidden = false;
    }

    correctForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const item = view().item || {};
      const f = correctForm.elements;
      const proposed = {
        headline: f.headline.value.trim(),
        urgency: parseInt(f.urgency.value, 10),
        categories: splitList(f.categories.value),
        regions: splitList(f.regions.value),
      };
      // A link or summary can be replaced, not removed: the API has no null for them.
      if (f.url.value.trim()) proposed.url = f.url.value.trim();
      if (f.summary.value.trim()) proposed.summary = f.summary.value.trim();
      const changes = {};
      for (const [name, value] of Object.entries(proposed)) {
        const before = item[name] ?? (Array.isArray(value) ? [] : null);
        if (JSON.stringify(before) !== JSON.stringify(value)) changes[name] = value;
      }
      if (!Object.keys(changes).length) {
        errorSlot.textContent = "Nothing changed.";
        return;
      }
      const note = f.correction_note.value.trim();
      if (note && view().status === "published") changes.correction_note = note;
      const result = await patch(changes);
      if (result.ok) correctForm.hidden = true;
    });

    retractForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const reason = retractForm.elements.reason.value.trim();
      if (!reason) {
        errorSlot.textContent = "Give a reason for the retraction.";
        retractForm.elements.reason.focus();
        return;
      }
      const result = await change("DELETE", "/v1/items/" + encodeURIComponent(id), { reason });
      if (result.ok) retractForm.hidden = true;
    });
  }

  // ---- posting --------------------------------------------------------------------------

  const form = $("#item-form");
  const postStatus = $("#post-status");

  function clearErrors(root) {
    for (const p of root.querySelectorAll(".field-error")) p.textContent = "";
    for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function showFieldError(error) {
    const slot = error.field && form.querySelector('[data-error-for="' + CSS.escape(error.field) + '"]');
    if (!slot) {
      postStatus.textContent = error.message;
      return;
    }
    slot.textContent = error.message;
    const input = form.querySelector('[name="' + CSS.escape(error.field) + '"]');
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  function localTime(value) {
    return value ? new Date(value).toISOString() : null;
  }

  function formBody() {
    const f = form.elements;
    const body = {
      headline: f.headline.value.trim(),
      edition: f.edition.value,
      urgency: parseInt(f.urgency.value, 10),
      categories: splitList(f.categories.value),
      regions: splitList(f.regions.value),
    };
    if (f.summary.value.trim()) body.summary = f.summary.value.trim();
    if (f.url.value.trim()) body.url = f.url.value.trim();
    const embargo = localTime(f.embargoed_until.value);
    if (embargo) body.embargoed_until = embargo;
    const expiry = localTime(f.expires_at.value);
    if (expiry) body.expires_at = expiry;
    return body;
  }

  // One idempotency key per distinct draft: a double click or a retry posts once.
  let draft = { text: "", key: "" };
  function idempotencyKey(body) {
    const text = JSON.stringify(body);
    if (draft.text !== text) draft = { text, key: crypto.randomUUID() };
    return draft.key;
  }

  function decisionText(view) {
    switch (view.status) {
      case "published": return "Published.";
      case "embargoed": return "Embargoed until " + clock(view.item.embargoed_until) + ".";
      case "held": return "Held: it may repeat an item already out (see the board).";
      case "duplicate": {
        const original = state.items.get(view.duplicate_of);
        return "Not published: it repeats " + (original ? "“" + original.item.headline + "”" : view.duplicate_of) + ".";
      }
      default: return "Queued; the board shows when it goes out.";
    }
  }

  async function post(event) {
    event.preventDefault();
    clearErrors(form);
    postStatus.textContent = "";
    const body = formBody();
    if (!body.headline) {
      showFieldError({ field: "headline", message: "A headline is required." });
      return;
    }
    const button = $("#post-button");
    button.disabled = true;
    postStatus.textContent = "Sending...";
    const result = await api("POST", "/v1/items", body, { "Idempotency-Key": idempotencyKey(body), Prefer: WAIT });
    button.disabled = false;
    if (!result.ok || !result.data || !result.data.id) {
      postStatus.textContent = "";
      showFieldError(errorOf(result));
      return;
    }
    postStatus.textContent = decisionText(result.data);
    const edition = body.edition;
    form.reset();
    form.elements.edition.value = edition;
    form.elements.urgency.value = "5";
    form.elements.headline.focus();
  }

  // The readers' ticker beside the form follows the edition being written for.
  function syncPreview() {
    $("#preview").setAttribute("edition", $("#f-edition").value);
  }
  $("#f-edition").addEventListener("change", syncPreview);

  form.addEventListener("submit", post);
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // ---- keyboard navigation and filters --------------------------------------------------

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const next = event.key === "j" || event.key === "ArrowDown";
    const prev = event.key === "k" || event.key === "ArrowUp";
    if (!next && !prev) return;
    const cards = [...document.querySelectorAll("#board > .card")];
    if (!cards.length) return;
    const at = cards.indexOf(target.closest ? target.closest(".card") : null);
    const to = at < 0 ? 0 : Math.min(cards.length - 1, Math.max(0, at + (next ? 1 : -1)));
    event.preventDefault();
    cards[to].focus();
  });

  const filters = $("#board-filters");
  filters.addEventListener("input", () => {
    const f = filters.elements;
    state.filters = {
      edition: f.edition.value,
      section: f.section.value.trim().toLowerCase(),
      region: f.region.value.trim().toLowerCase(),
      urgency: parseInt(f.urgency.value, 10) || 9,
    };
    renderBoard();
  });
  filters.addEventListener("submit", (event) => event.preventDefault());

  fillUrgency($("#f-urgency"), false);
  $("#f-urgency").value = "5";
  fillUrgency($("#b-urgency"), true);
  start();
})();
