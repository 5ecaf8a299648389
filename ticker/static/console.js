// Ticker editor console: post, follow, correct and retract items through the v1 API.
// Served under a CSP without inline script; all text goes into the page with textContent.
(() => {
  "use strict";

  const KEY_STORAGE = "ticker.apiKey";
  const RECENT_STORAGE = "ticker.recent";
  const RECENT_MAX = 20;
  const POLL_MS = 400;
  const POLL_TIMEOUT_MS = 20000;
  const FIELDS = ["headline", "edition", "urgency", "categories", "regions", "url"];

  const $ = (sel, root = document) => root.querySelector(sel);
  const keyInput = $("#api-key");
  const keyStatus = $("#key-status");
  const form = $("#item-form");
  const postStatus = $("#post-status");
  const preview = $("#preview");
  const recentList = $("#recent");
  const recentEmpty = $("#recent-empty");
  const template = $("#recent-item");

  // ---- storage (sessionStorage: the key dies with the tab) ------------------------------

  function readJSON(name, fallback) {
    try {
      const raw = sessionStorage.getItem(name);
      return raw ? JSON.parse(raw) : fallback;
    } catch (_) {
      return fallback;
    }
  }

  const state = { key: sessionStorage.getItem(KEY_STORAGE) || "", recent: readJSON(RECENT_STORAGE, []) };

  function saveRecent() {
    sessionStorage.setItem(RECENT_STORAGE, JSON.stringify(state.recent.slice(0, RECENT_MAX)));
  }

  function showKeyStatus() {
    keyStatus.textContent = state.key
      ? "Key in use (ending " + state.key.slice(-4) + ")."
      : "No key yet: posting needs one.";
  }

  // ---- API ------------------------------------------------------------------------------

  async function api(method, path, body, extraHeaders) {
    const headers = { Accept: "application/json", ...(extraHeaders || {}) };
    if (state.key) headers.Authorization = "Bearer " + state.key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
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
    return { ok: response.ok, status: response.status, data };
  }

  function errorOf(result) {
    const err = result.data && result.data.error;
    if (err && typeof err === "object") return { field: err.field || null, message: err.message || err.code };
    if (result.status === 401) return { field: null, message: "The API key was not accepted." };
    if (result.status === 403) return { field: null, message: "This key may not do that." };
    return { field: null, message: "Request failed (HTTP " + result.status + ")." };
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Poll GET /v1/items/{id} until `done` says the change has landed (or give up).
  async function follow(entry, done) {
    const deadline = Date.now() + POLL_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const result = await api("GET", "/v1/items/" + encodeURIComponent(entry.id));
      if (result.ok && result.data) {
        merge(entry, result.data);
        render(entry);
        if (done(result.data)) return true;
      } else if (result.status && result.status !== 404) {
        entry.error = errorOf(result).message;
        render(entry);
        return false;
      }
      await sleep(POLL_MS);
    }
    entry.error = "Still waiting for the service; refresh the item later.";
    render(entry);
    return false;
  }

  function merge(entry, data) {
    entry.status = data.status || entry.status;
    entry.version = data.version || entry.version || 1;
    entry.published_version = data.published_version || 0;
    if (data.item && typeof data.item === "object") entry.item = data.item;
    entry.duplicate_of = data.duplicate_of || null;
    entry.event_id = data.event_id || null;
    entry.reason = data.reason || (data.error && data.error.message) || null;
    entry.error = null;
    saveRecent();
  }

  // ---- posting --------------------------------------------------------------------------

  function splitList(value) {
    return value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  }

  function clearErrors(root) {
    for (const p of root.querySelectorAll(".field-error")) p.textContent = "";
    for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function showFieldError(root, error, fallback) {
    const slot = error.field && root.querySelector('[data-error-for="' + CSS.escape(error.field) + '"]');
    if (slot) {
      slot.textContent = error.message;
      const input = root.querySelector('[name="' + CSS.escape(error.field) + '"]');
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    } else {
      fallback.textContent = error.message;
    }
  }

  function formBody() {
    const data = new FormData(form);
    const body = {
      headline: String(data.get("headline") || "").trim(),
      edition: String(data.get("edition") || ""),
      urgency: parseInt(String(data.get("urgency") || "5"), 10),
      categories: splitList(String(data.get("categories") || "")),
      regions: splitList(String(data.get("regions") || "")),
    };
    const url = String(data.get("url") || "").trim();
    if (url) body.url = url;
    return body;
  }

  // One idempotency key per distinct draft: a double click or a retry posts once.
  let draft = { text: "", key: "" };
  function idempotencyKey(body) {
    const text = JSON.stringify(body);
    if (draft.text !== text) draft = { text, key: crypto.randomUUID() };
    return draft.key;
  }

  async function post(event) {
    event.preventDefault();
    clearErrors(form);
    postStatus.textContent = "";
    if (!state.key) {
      postStatus.textContent = "Enter an API key first.";
      keyInput.focus();
      return;
    }
    const body = formBody();
    if (!body.headline) {
      showFieldError(form, { field: "headline", message: "A headline is required." }, postStatus);
      return;
    }
    const button = $("#post-button");
    button.disabled = true;
    postStatus.textContent = "Sending...";
    const result = await api("POST", "/v1/items", body, { "Idempotency-Key": idempotencyKey(body) });
    button.disabled = false;
    if (!result.ok || !result.data || !result.data.id) {
      postStatus.textContent = "";
      showFieldError(form, errorOf(result), postStatus);
      return;
    }
    postStatus.textContent = "Queued as " + result.data.id + ".";
    const entry = { id: result.data.id, status: result.data.status || "queued", item: body };
    addRecent(entry);
    form.reset();
    $("#f-edition").value = body.edition;
    const landed = await follow(entry, (d) => d.status !== "queued");
    if (landed) postStatus.textContent = statusText(entry);
  }

  // ---- recent items ---------------------------------------------------------------------

  function addRecent(entry) {
    state.recent = [entry, ...state.recent.filter((e) => e.id !== entry.id)].slice(0, RECENT_MAX);
    saveRecent();
    render(entry);
  }

  function statusText(entry) {
    switch (entry.status) {
      case "published": return "Published.";
      case "duplicate": return "Not published: duplicate of " + entry.duplicate_of + ".";
      case "rejected": return "Rejected" + (entry.reason ? ": " + entry.reason : ".");
      case "retracted": return "Retracted.";
      case "expired": return "Expired.";
      default: return "Queued...";
    }
  }

  function nodeFor(entry) {
    let li = document.getElementById("recent-" + entry.id);
    if (!li) {
      li = template.content.firstElementChild.cloneNode(true);
      li.id = "recent-" + entry.id;
      li.tabIndex = -1;
      wire(li, entry.id);
    }
    return li;
  }

  function render(entry) {
    const li = nodeFor(entry);
    const item = entry.item || {};
    const badge = $('[data-role="status"]', li);
    badge.textContent = entry.status;
    badge.className = "badge status-" + entry.status;
    $('[data-role="headline"]', li).textContent = item.headline || "";
    const meta = [entry.id, item.edition, "urgency " + (item.urgency ?? "?")];
    if (entry.version) meta.push("v" + entry.version);
    if ((item.categories || []).length) meta.push(item.categories.join(", "));
    if ((item.regions || []).length) meta.push(item.regions.join(", "));
    $('[data-role="meta"]', li).textContent = meta.join(" · ");
    const dup = $('[data-role="duplicate"]', li);
    dup.hidden = !(entry.status === "duplicate" && entry.duplicate_of);
    if (!dup.hidden) {
      const link = $('[data-role="duplicate-link"]', li);
      link.href = "/v1/items/" + encodeURIComponent(entry.duplicate_of);
      link.textContent = entry.duplicate_of;
      link.dataset.original = entry.duplicate_of;
    }
    $('[data-role="error"]', li).textContent = entry.error || (entry.status === "rejected" ? statusText(entry) : "");
    // Only a live item can be corrected or retracted.
    $(".actions", li).hidden = entry.status !== "published";
    // Keep the list in the same order as state.recent (newest first).
    const at = state.recent.findIndex((e) => e.id === entry.id);
    const next = state.recent.slice(at + 1).map((e) => document.getElementById("recent-" + e.id)).find(Boolean);
    if (li.parentNode !== recentList || li.nextElementSibling !== (next || null)) {
      recentList.insertBefore(li, next || null);
    }
    recentEmpty.hidden = state.recent.length > 0;
  }

  function entryById(id) {
    return state.recent.find((e) => e.id === id);
  }

  function wire(li, id) {
    const correctForm = $('[data-role="correct-form"]', li);
    const retractForm = $('[data-role="retract-form"]', li);
    const errorSlot = $('[data-role="error"]', li);

    $('[data-action="correct"]', li).addEventListener("click", () => {
      const item = (entryById(id) || {}).item || {};
      correctForm.elements.headline.value = item.headline || "";
      correctForm.elements.urgency.value = item.urgency ?? "";
      correctForm.elements.url.value = item.url || "";
      correctForm.elements.categories.value = (item.categories || []).join(", ");
      correctForm.elements.regions.value = (item.regions || []).join(", ");
      correctForm.elements.correction_note.value = "";
      retractForm.hidden = true;
      correctForm.hidden = false;
      correctForm.elements.headline.focus();
    });
    $('[data-action="retract"]', li).addEventListener("click", () => {
      correctForm.hidden = true;
      retractForm.hidden = false;
      retractForm.elements.reason.focus();
    });
    for (const cancel of li.querySelectorAll('[data-action="cancel"]')) {
      cancel.addEventListener("click", () => {
        correctForm.hidden = true;
        retractForm.hidden = true;
      });
    }

    correctForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const entry = entryById(id);
      if (!entry) return;
      const item = entry.item || {};
      const f = correctForm.elements;
      const proposed = {
        headline: f.headline.value.trim(),
        urgency: parseInt(f.urgency.value, 10),
        categories: splitList(f.categories.value),
        regions: splitList(f.regions.value),
      };
      // A link can be replaced, not removed: the API has no null url.
      if (f.url.value.trim()) proposed.url = f.url.value.trim();
      // PATCH carries only what changed.
      const changes = {};
      for (const [name, value] of Object.entries(proposed)) {
        const before = item[name] ?? (Array.isArray(value) ? [] : null);
        if (JSON.stringify(before) !== JSON.stringify(value)) changes[name] = value;
      }
      if (Number.isNaN(changes.urgency)) delete changes.urgency;
      if (!Object.keys(changes).length) {
        errorSlot.textContent = "Nothing changed.";
        return;
      }
      const note = f.correction_note.value.trim();
      if (note) changes.correction_note = note;
      errorSlot.textContent = "";
      const result = await api("PATCH", "/v1/items/" + encodeURIComponent(id), changes);
      if (!result.ok) {
        errorSlot.textContent = errorOf(result).message;
        return;
      }
      correctForm.hidden = true;
      const wanted = (result.data && result.data.version) || (entry.version || 1) + 1;
      // Landed once the new version is the published one (or the item left the ticker).
      await follow(entry, (d) => (d.published_version || 0) >= wanted || d.status !== "published");
    });

    retractForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const entry = entryById(id);
      const reason = retractForm.elements.reason.value.trim();
      if (!entry || !reason) {
        errorSlot.textContent = "Give a reason for the retraction.";
        return;
      }
      errorSlot.textContent = "";
      const result = await api("DELETE", "/v1/items/" + encodeURIComponent(id), { reason });
      if (!result.ok) {
        errorSlot.textContent = errorOf(result).message;
        return;
      }
      retractForm.hidden = true;
      await follow(entry, (d) => d.status === "retracted");
    });

    // The duplicate link loads the original into this list, where it can be corrected.
    li.addEventListener("click", async (event) => {
      const link = event.target.closest('[data-role="duplicate-link"]');
      if (!link || !state.key) return;
      event.preventDefault();
      const original = link.dataset.original;
      let entry = entryById(original);
      if (!entry) {
        const result = await api("GET", "/v1/items/" + encodeURIComponent(original));
        if (!result.ok || !result.data) {
          errorSlot.textContent = errorOf(result).message;
          return;
        }
        entry = { id: original, status: "queued" };
        merge(entry, result.data);
        state.recent.push(entry);
        saveRecent();
      }
      render(entry);
      document.getElementById("recent-" + original).focus();
    });
  }

  // ---- start ----------------------------------------------------------------------------

  const editionSelect = $("#f-edition");
  const editions = (document.body.dataset.editions || "en").split(",").filter(Boolean);
  for (const code of editions) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = code;
    editionSelect.appendChild(option);
  }
  // The preview follows the edition being written for.
  const syncPreview = () => preview.setAttribute("edition", editionSelect.value);
  editionSelect.addEventListener("change", syncPreview);
  syncPreview();

  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = keyInput.value.trim();
    keyInput.value = "";
    if (state.key) sessionStorage.setItem(KEY_STORAGE, state.key);
    showKeyStatus();
  });
  $("#forget-key").addEventListener("click", () => {
    state.key = "";
    sessionStorage.removeItem(KEY_STORAGE);
    showKeyStatus();
  });
  form.addEventListener("submit", post);

  showKeyStatus();
  for (const entry of [...state.recent].reverse()) render(entry);
  recentEmpty.hidden = state.recent.length > 0;
  // Items still queued when the tab was reloaded: pick the follow-up again.
  for (const entry of state.recent) {
    if (entry.status === "queued") follow(entry, (d) => d.status !== "queued");
  }
})();
