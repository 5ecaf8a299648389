/*
 * Ticker Web Push service worker: shows flash alerts and closes withdrawn ones.
 *
 * The site hosts this file on its own origin (a service worker must come from
 * the page's origin), either as a copy or with one line:
 *   importScripts("https://ticker.example/static/ticker-push-sw.js");
 *
 * Each push is the JSON the Ticker worker encrypted for this browser:
 *   {"action": "alert", "id", "tag", "title", "body", "url", "lang", "dir", "urgency", "updated"}
 *   {"action": "withdraw", "id", "tag"}  (the item was retracted: close its notification)
 * A correction is an alert with the same tag, so it replaces the shown notification.
 * Text goes into the notification as text; nothing here builds markup.
 */
"use strict";

const TICKER_UPDATED = { en: "UPDATED", ar: "مُحدَّث", es: "ACTUALIZADO" };

function tickerTitle(msg) {
  const title = String(msg.title || "BREAKING");
  if (!msg.updated) return title;
  const lang = String(msg.lang || "en").split("-")[0];
  return title + " · " + (TICKER_UPDATED[lang] || TICKER_UPDATED.en);
}

async function tickerClose(tag) {
  const shown = await self.registration.getNotifications({ tag: tag });
  shown.forEach((n) => n.close());
}

self.addEventListener("push", (event) => {
  let msg;
  try {
    msg = event.data ? event.data.json() : null;
  } catch (e) {
    return; // not ours
  }
  if (!msg || typeof msg.tag !== "string" || msg.tag.indexOf("ticker-") !== 0) return;
  if (msg.action === "withdraw") {
    event.waitUntil(tickerClose(msg.tag));
    return;
  }
  const url = typeof msg.url === "string" && /^https?:\/\//.test(msg.url) ? msg.url : null;
  event.waitUntil(
    self.registration.showNotification(tickerTitle(msg), {
      body: String(msg.body || ""),
      tag: msg.tag,
      lang: String(msg.lang || ""),
      dir: msg.dir === "rtl" ? "rtl" : "ltr",
      renotify: false,
      requireInteraction: Number(msg.urgency) <= 2,
      data: { url: url, id: msg.id },
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data && event.notification.data.url;
  if (url) event.waitUntil(self.clients.openWindow(url));
});
