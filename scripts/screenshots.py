"""Screenshots of both pages for the README, taken from a demo database in headless Chromium
after one real training run of the demo model (a minute or two on a CPU).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402
from waitress.server import create_server  # noqa: E402

from training.src.app import create_app  # noqa: E402
from utils import database, demo  # noqa: E402
from utils.config import load_config  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db.db"
        database.init_db(db)
        conn = database.connect(db)
        demo.fill_demo(conn)
        for item_id in range(1, 25):  # most reviewed, as after a first session
            conn.execute("UPDATE s2s_training_data SET is_reviewed = 1, transcript = ? WHERE id = ?",
                         (demo.DEMO_CLIPS[item_id - 1][0], item_id))
        model = Path(tmp) / "model"
        demo.install_demo_model(model)
        app = create_app(load_config(environ={}, overrides={"database": {"path": str(db)},
                                                            "model": {"path": str(model)}}))
        server = create_server(app, host="127.0.0.1", port=0)
        base = f"http://127.0.0.1:{server.effective_port}"
        threading.Thread(target=server.run, daemon=True).start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            # One real training run first, so the history, chart and versions show what a user sees.
            page.request.post(f"{base}/api/train")
            deadline = time.monotonic() + 900
            while page.request.get(f"{base}/api/train/status").json()["state"] not in ("done", "failed", "cancelled"):
                if time.monotonic() > deadline:
                    raise SystemExit("the demo training run did not finish within 15 minutes")
                time.sleep(2)
            for item_id in range(25, 28):  # reviewed since, so Train is ready again
                conn.execute("UPDATE s2s_training_data SET is_reviewed = 1, transcript = ? WHERE id = ?",
                             (demo.DEMO_CLIPS[item_id - 1][0], item_id))
            conn.close()
            page.goto(f"{base}/")
            page.wait_for_selector("#items-body tr")
            page.wait_for_timeout(1500)  # durations fill in
            page.screenshot(path=str(out / "dashboard.png"), full_page=True)
            page.goto(f"{base}/editor")
            page.wait_for_selector("#transcript")
            page.wait_for_timeout(800)
            page.keyboard.press("Control+Space")
            page.wait_for_timeout(900)
            page.keyboard.press("Control+Space")
            page.locator("#transcript").press("End")
            page.keyboard.type(" lamp")
            page.screenshot(path=str(out / "editor.png"), full_page=True)
            browser.close()
        server.close()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
