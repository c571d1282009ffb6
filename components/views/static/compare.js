// The Compare tab's keyboard: one document-level listener (Gradio has no hotkey API).
// window.__studioCompareConfig (set just before this script) gives
//   buttons: KeyboardEvent.key in lower case -> the elem_id of the button it clicks
//   labelKeys: the keys that write a label (ignored until the next pair is on screen)
// A graded schema or an N-response pair draws #cmp-graded-panel (views/label_state.graded_html):
//   data-mode="grade": digits 1..data-points send the overall grade; Tab / Shift+Tab pick an aspect
//     row (data-aspects), where 1 / 2 / 3 (or a / b / =) choose A, B or the same and move on;
//   data-mode="rank": the response numbers pressed best first; the last one sends the ranking.
// What the keys gave goes in window.__studioGraded, and #cmp-label-graded is clicked.
(() => {
  if (window.__studioCompareKeys) return;
  window.__studioCompareKeys = true;
  const config = window.__studioCompareConfig || {buttons: {}, labelKeys: []};
  const BUTTONS = config.buttons;
  const LABEL_KEYS = new Set(config.labelKeys);
  const CONFIDENCE = {"q": "1", "w": "2", "e": "3", "0": "0"};
  const TEXT_INPUTS = new Set(["", "text", "search", "email", "number", "password", "tel", "url"]);
  let busyUntil = 0;
  let graded = {aspect: -1, aspects: {}, ranking: []};

  function panel() {
    const el = document.getElementById("cmp-graded-panel");
    return el && el.offsetParent !== null ? el : null;
  }

  function paint(el) {
    // what has been pressed on this pair, drawn on the panel
    if (!el) return;
    el.querySelectorAll(".cmp-overall, .cmp-aspect").forEach((row) => {
      const i = row.classList.contains("cmp-aspect") ? Number(row.dataset.index) : -1;
      row.classList.toggle("cmp-row-active", i === graded.aspect);
      if (i >= 0) {
        const picked = graded.aspects[row.dataset.aspect];
        row.querySelectorAll(".cmp-choice").forEach((c) => c.classList.toggle("cmp-picked", c.dataset.choice === picked));
      }
    });
    el.querySelectorAll(".cmp-resp").forEach((card) => {
      const place = graded.ranking.indexOf(Number(card.dataset.index));
      card.classList.toggle("cmp-ranked", place >= 0);
      const tag = card.querySelector(".cmp-rank-place");
      if (tag) tag.textContent = place >= 0 ? ` · ranked ${place + 1}` : "";
    });
    const now = el.querySelector(".cmp-rank-now");
    if (now) now.textContent = graded.ranking.length ? graded.ranking.map((i) => i + 1).join(" > ") : "none yet";
  }

  function resetGraded() {
    graded = {aspect: -1, aspects: {}, ranking: []};
    paint(panel());
  }

  function send(value) {
    const button = document.getElementById("cmp-label-graded");
    if (!button) return;
    window.__studioGraded = JSON.stringify(value);
    busyUntil = performance.now() + 2000;
    window.__studioKeyAt = performance.now();
    button.click();
  }

  function gradedKey(e, key, el) {
    // true when the graded panel took the key
    if (performance.now() < busyUntil && key !== "tab") { e.preventDefault(); return true; }
    if (el.dataset.mode === "rank") {
      const n = Number(el.dataset.n);
      if (key === "backspace") { e.preventDefault(); graded.ranking.pop(); paint(el); return true; }
      if (!/^[1-9]$/.test(key)) return false;
      e.preventDefault();
      if (e.repeat) return true;
      const i = Number(key) - 1;
      if (i >= n || graded.ranking.includes(i)) return true;
      graded.ranking.push(i);
      if (graded.ranking.length === n - 1) {  // the last one left goes last
        for (let j = 0; j < n; j++) if (!graded.ranking.includes(j)) graded.ranking.push(j);
      }
      paint(el);
      if (graded.ranking.length === n) send({ranking: graded.ranking});
      return true;
    }
    const aspects = JSON.parse(el.dataset.aspects || "[]");
    if (key === "tab" && aspects.length) {
      e.preventDefault();
      const step = e.shiftKey ? -1 : 1;
      graded.aspect = ((graded.aspect + 1 + step + aspects.length + 1) % (aspects.length + 1)) - 1;
      paint(el);
      return true;
    }
    if (key === "escape" && graded.aspect >= 0) { e.preventDefault(); graded.aspect = -1; paint(el); return true; }
    if (graded.aspect >= 0) {
      const choice = {"1": "chosen", "a": "chosen", "2": "rejected", "b": "rejected", "3": "tie", "=": "tie"}[key];
      if (!choice) return false;
      e.preventDefault();
      graded.aspects[aspects[graded.aspect]] = choice;
      graded.aspect = graded.aspect + 1 < aspects.length ? graded.aspect + 1 : -1;
      paint(el);
      return true;
    }
    const points = Number(el.dataset.points);
    if (/^[1-9]$/.test(key) && Number(key) <= points) {
      e.preventDefault();
      if (e.repeat) return true;
      send({grade: Number(key) - 1 - Math.floor(points / 2), aspects: graded.aspects});
      return true;
    }
    return /^[0-9]$/.test(key);  // digits past the scale do nothing (no binary label by mistake)
  }

  function typing(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && TEXT_INPUTS.has((el.getAttribute("type") || "").toLowerCase());
  }

  function shown(el) { return !!el && el.offsetParent !== null; }

  function watch() {
    // a new pair (or a message) on the page ends the wait for the last label key
    for (const id of ["cmp-title", "cmp-status"]) {
      const el = document.getElementById(id);
      if (el && !el.__studioWatched) {
        el.__studioWatched = true;
        new MutationObserver(() => {
          busyUntil = 0; window.__studioRenderedAt = performance.now();
          if (id === "cmp-title") resetGraded();
        })
          .observe(el, {childList: true, subtree: true, characterData: true});
      }
    }
  }

  function clickFirst(selector, e) {
    const el = document.querySelector(selector);
    if (el) { e.preventDefault(); el.click(); }
    return el;
  }

  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = (e.composedPath && e.composedPath()[0]) || e.target;
    if (typing(target)) { if (e.key === "Escape") target.blur(); return; }
    if (!shown(document.getElementById("cmp-keys"))) return;
    watch();
    const key = (e.key || "").toLowerCase();
    const gradedPanel = panel();
    if (gradedPanel && gradedKey(e, key, gradedPanel)) return;
    if (key === "n") {
      const note = document.querySelector("#cmp-note textarea, #cmp-note input");
      if (note) { e.preventDefault(); note.focus(); }
      return;
    }
    if (key === "d") { clickFirst("#cmp-diff-toggle input[type=checkbox]", e); return; }
    if (key in CONFIDENCE) {
      clickFirst(`#cmp-confidence input[type=radio][value="${CONFIDENCE[key]}"]`, e);
      return;
    }
    const id = BUTTONS[key];
    if (!id) return;
    e.preventDefault();
    if (e.repeat) return;
    const now = performance.now();
    if (LABEL_KEYS.has(key) && now < busyUntil) return;  // the last label's next pair is not shown yet
    const button = document.getElementById(id);
    if (!button || button.disabled || !shown(button)) return;  // e.g. no suggestion to accept
    if (LABEL_KEYS.has(key)) busyUntil = now + 2000;
    window.__studioKeyAt = now;
    button.click();
  }, true);

  // A link to ?tab=compare (a search hit, "label these hits") opens in the page: the hidden
  // #cmp-open button's event reads window.__studioLink; the address bar follows without a reload.
  // Gradio draws a tab's content when it is first shown: the Compare tab is opened first if need be.
  function whenThere(id, then, waited) {
    const el = document.getElementById(id);
    if (el) return then(el);
    if ((waited || 0) > 5000) return;
    setTimeout(() => whenThere(id, then, (waited || 0) + 25), 25);
  }

  window.studioOpen = (search) => {
    const tab = document.getElementById("compare-tab-button");
    if (!document.getElementById("cmp-open") && !tab) return false;
    window.__studioLink = search;
    window.__studioOpenAt = performance.now();
    try { history.pushState(null, "", search); } catch (err) { /* a sandboxed frame */ }
    if (!document.getElementById("cmp-open")) tab.click();
    whenThere("cmp-open", (opener) => { watch(); opener.click(); });
    return true;
  };

  document.addEventListener("click", (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    const a = e.target && e.target.closest ? e.target.closest("a[href]") : null;
    if (!a || (a.target && a.target !== "_self")) return;
    let url;
    try { url = new URL(a.getAttribute("href"), location.href); } catch (err) { return; }
    if (url.origin !== location.origin || url.pathname !== location.pathname) return;
    const tab = url.searchParams.get("tab");
    if (tab === "compare" && window.studioOpen(url.search)) e.preventDefault();
    else if (tab === "search" && window.studioSearch && window.studioSearch(url.search)) e.preventDefault();
  }, true);
})();
