"""Screenshots of every screen in light and dark, for the docs: serves the app on the demo data in a
temporary database and photographs each tab in Chromium.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--width 1440 --height 900]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402

SCREENS = {
    # file name: (query string, a selector that shows the screen is drawn, tab to click or None)
    "browse": ("?dataset=demo-assistant-pairs&row=2", "#browse-prompt", None),
    "search": ("?tab=search&q=egg+yolk&datasets=demo-assistant-pairs,demo-field-notes,demo-trl-standard",
               "#search-results .sr-hit", None),
    "statistics": ("?tab=stats&dataset=demo-trl-standard", ".js-plotly-plot g.trace", None),
    "compare": ("?tab=compare&dataset=demo-assistant-pairs&row=1", "#cmp-label-chosen", None),
    "revise": ("?tab=revise&dataset=demo-sdsd-dialogues&row=0", "#revise-chat", None),
    "personas": ("", "", "Personas"),
    "data": ("", "#data-table", "Data"),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    p.add_argument("--width", type=int, default=1440)
    p.add_argument("--height", type=int, default=900)
    p.add_argument("--only", nargs="*", help="screens to take (default: all)")
    args = p.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from components import search
    from components.ingest import load_demo
    from components.store import Database

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "studio.duckdb")
        loaded = load_demo(db)
        for s in loaded:
            search.build_index(db, s.name)
        server = AppServer(db)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for scheme in ("light", "dark"):
                    page = browser.new_page(viewport={"width": args.width, "height": args.height},
                                            color_scheme=scheme)
                    for name, (query, ready, tab) in SCREENS.items():
                        if args.only and name not in args.only:
                            continue
                        page.goto(server.url + query)
                        page.wait_for_selector("#app-title", timeout=60_000)
                        if tab:
                            page.get_by_role("tab", name=tab).click()
                        if ready:
                            page.wait_for_selector(ready, timeout=60_000)
                        page.wait_for_timeout(800)  # let charts and fonts settle before the picture
                        path = out / f"{name}-{scheme}.png"
                        page.screenshot(path=str(path))
                        print(path)
                    page.close()
                browser.close()
        finally:
            server.close()
            db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
