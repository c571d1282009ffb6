// The Statistics tab's clickable charts: a figure whose layout.meta says {link: "queue" | "row",
// dataset} opens, on a click, the Compare tab at the labeling queue of the clicked bar (its
// customdata is the bar's key) or at the clicked point's row (its customdata is the row).
// Gradio draws and redraws the plots itself: every plot found on the page is (re)bound once.
(() => {
  if (window.__studioStatsClicks) return;
  window.__studioStatsClicks = true;

  function href(meta, value) {
    const p = new URLSearchParams({tab: "compare", dataset: meta.dataset});
    if (meta.link === "row") p.set("row", String(value));
    else { p.set("queue", "bin"); p.set("q", String(value)); }
    return "?" + p.toString();
  }

  function open(search) {
    if (window.studioOpen && window.studioOpen(search)) return;
    window.location.search = search;
  }

  function bind(gd) {
    if (!gd.on || !gd._ev) return;
    if (!gd.__studioClick) {
      gd.__studioClick = (data) => {
        const meta = (gd._fullLayout && gd._fullLayout.meta) || (gd.layout && gd.layout.meta);
        const point = data && data.points && data.points[0];
        if (!meta || !meta.link || !point || point.customdata === undefined || point.customdata === null) return;
        const value = Array.isArray(point.customdata) ? point.customdata[0] : point.customdata;
        const search = href(meta, value);
        gd.dataset.studioLast = search;
        open(search);
      };
    }
    if (!gd._ev.listeners("plotly_click").includes(gd.__studioClick)) gd.on("plotly_click", gd.__studioClick);
  }

  function scan() {
    document.querySelectorAll("[id^='stats-plot-'] .js-plotly-plot").forEach(bind);
  }

  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; scan(); }, 200);
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
