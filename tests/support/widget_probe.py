"""Measurements the widget tests take inside the page (layout as Chromium computed it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

__all__ = [
    "CRAWL_PASS_JS",
    "DOCS_SHOTS",
    "WRAP_JS",
    "crawl_fully_seen",
    "keep_screenshot",
    "set_attrs",
]

DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "widget"

# Waits for a crawling copy of item `id`, then steps its own animation through the pass (paused,
# 41 points from start to end) and reads where Chromium lays the headline out at each: the
# leftmost and rightmost x it reached, its first and last x, its width, and the crawl window's
# edges. Seeking, not sampling frames, so a loaded machine cannot skip part of the pass.
# Null if no copy appeared in time.
CRAWL_PASS_JS = """([sel, id, ms]) => new Promise((resolve) => {
  const root = document.querySelector(sel).shadowRoot;
  const list = root.querySelector('.items');
  const deadline = performance.now() + ms;
  function measure(li) {
    const h = li.querySelector('.headline');
    const anim = li.getAnimations()[0];
    const running = anim.playState === 'running';
    const end = anim.effect.getComputedTiming().endTime;
    anim.pause();
    const xs = [];
    for (let i = 0; i <= 40; i++) {
      anim.currentTime = Math.max(0, (end * i) / 40 - (i === 40 ? 1 : 0));
      xs.push(h.getBoundingClientRect().left);
    }
    anim.play();
    const v = list.getBoundingClientRect();
    return {min: Math.min(...xs), max: Math.max(...xs), first: xs[0], last: xs[40],
            width: h.getBoundingClientRect().width, scrollWidth: h.scrollWidth,
            clientWidth: h.clientWidth, vpLeft: v.left, vpRight: v.right, running};
  }
  function poll() {
    const li = [...root.querySelectorAll('li.item')].find(l => l.dataset.id === id
      && l.getAnimations().length);
    if (li) { resolve(measure(li)); return; }
    if (performance.now() > deadline) { resolve(null); return; }
    setTimeout(poll, 20);
  }
  poll();
})"""

# The shown item of a rotating bar: whether its headline fits (no overflow, no clamp) inside the
# list and the bar, how many lines it takes, and whether the time is on screen in the bar.
WRAP_JS = """(sel) => {
  const root = document.querySelector(sel).shadowRoot;
  const bar = root.querySelector('.bar');
  const list = root.querySelector('.items');
  const li = [...root.querySelectorAll('li.item')].find(l => !l.hidden);
  const h = li.querySelector('.headline');
  const time = li.querySelector('.time');
  const within = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1
    && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
  const hr = h.getBoundingClientRect();
  const tr = time.getBoundingClientRect();
  const lineHeight = parseFloat(getComputedStyle(h).lineHeight);
  return {
    overflowX: h.scrollWidth - h.clientWidth,
    overflowY: h.scrollHeight - h.clientHeight,
    barOverflowY: bar.scrollHeight - bar.clientHeight,
    headlineInList: within(hr, list.getBoundingClientRect()),
    headlineInBar: within(hr, bar.getBoundingClientRect()),
    timeShown: getComputedStyle(time).display !== 'none' && tr.width > 0
      && within(tr, bar.getBoundingClientRect()),
    lines: Math.round(hr.height / lineHeight),
    text: h.textContent,
  };
}"""


def crawl_fully_seen(m: dict[str, Any]) -> bool:
    """Whether every point of the headline crossed the viewport: its left edge reached the
    viewport while its right edge also got inside, at the two ends of its travel."""
    return bool(m["min"] + m["width"] <= m["vpRight"] + 1 and m["max"] >= m["vpLeft"] - 1)


async def set_attrs(page: Any, selector: str, **attrs: str) -> None:
    """Set attributes on an element (underscores become dashes)."""
    await page.evaluate(
        "([sel, attrs]) => { const el = document.querySelector(sel);"
        " for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v); }",
        [selector, {k.replace("_", "-"): v for k, v in attrs.items()}],
    )


def keep_screenshot(path: Path) -> None:
    """Copy a screenshot into docs/ when asked (TICKER_UPDATE_SCREENSHOTS=1), so a plain test
    run never dirties the work tree."""
    if os.environ.get("TICKER_UPDATE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / path.name)
