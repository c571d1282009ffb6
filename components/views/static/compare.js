// The Compare tab's keyboard: one document-level listener (Gradio has no hotkey API).
// window.__studioCompareConfig (set just before this script) gives
//   buttons: KeyboardEvent.key in lower case -> the elem_id of the button it clicks
//   labelKeys: the keys that write a label (ignored until the next pair is on screen)
(() => {
  if (window.__studioCompareKeys) return;
  window.__studioCompareKeys = true;
  const config = window.__studioCompareConfig || {buttons: {}, labelKeys: []};
  const BUTTONS = config.buttons;
  const LABEL_KEYS = new Set(config.labelKeys);
  const CONFIDENCE = {"q": "1", "w": "2", "e": "3", "0": "0"};
  const TEXT_INPUTS = new Set(["", "text", "search", "email", "number", "password", "tel", "url"]);
  let busyUntil = 0;

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
        new MutationObserver(() => { busyUntil = 0; window.__studioRenderedAt = performance.now(); })
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
    if (!button || button.disabled) return;
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
    if (url.searchParams.get("tab") !== "compare") return;
    if (window.studioOpen(url.search)) e.preventDefault();
  }, true);
})();
