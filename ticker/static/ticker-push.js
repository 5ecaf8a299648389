/*
 * Ticker Web Push, page side: ask the reader, subscribe this browser, tell Ticker.
 *
 *   <script src="https://ticker.example/static/ticker-push.js"></script>
 *   <button id="alerts">Alert me to flash news</button>
 *   <script>
 *     document.getElementById("alerts").onclick = () => TickerPush.subscribe({
 *       ticker: "https://ticker.example",   // the Ticker API's origin
 *       worker: "/ticker-push-sw.js",       // the service worker, on the site's origin
 *       edition: "en", maxUrgency: 2,       // flashes only (the default)
 *     });
 *   </script>
 *
 * subscribe() must run from a click (browsers ask for permission only then).
 * It resolves to the subscription's id, kept in localStorage for unsubscribe().
 */
"use strict";

(function () {
  const STORE = "ticker-push-subscription";

  function keyBytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  async function subscribe(options) {
    const o = options || {};
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      throw new Error("this browser has no Web Push");
    }
    if ((await Notification.requestPermission()) !== "granted") {
      throw new Error("notifications were not allowed");
    }
    const ticker = String(o.ticker || "").replace(/\/$/, "");
    const registration = await navigator.serviceWorker.register(o.worker || "/ticker-push-sw.js");
    await navigator.serviceWorker.ready;
    const key = await (await fetch(ticker + "/v1/push/key")).json();
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(key.public_key),
    });
    const filter = { edition: o.edition || "en", max_urgency: o.maxUrgency || 2 };
    if (o.categories) filter.categories = o.categories;
    if (o.regions) filter.regions = o.regions;
    const answer = await fetch(ticker + "/v1/push/subscriptions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ subscription: subscription.toJSON(), filter: filter }),
    });
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.error ? body.error.message : "subscription refused");
    localStorage.setItem(STORE, JSON.stringify({ ticker: ticker, id: body.id }));
    return body.id;
  }

  async function unsubscribe(options) {
    const o = options || {};
    const saved = JSON.parse(localStorage.getItem(STORE) || "null");
    if (saved) {
      await fetch(saved.ticker + "/v1/push/subscriptions/" + saved.id, { method: "DELETE" });
      localStorage.removeItem(STORE);
    }
    const registration = await navigator.serviceWorker.getRegistration(o.worker || "/ticker-push-sw.js");
    const subscription = registration && (await registration.pushManager.getSubscription());
    if (subscription) await subscription.unsubscribe();
  }

  window.TickerPush = { subscribe: subscribe, unsubscribe: unsubscribe };
})();
