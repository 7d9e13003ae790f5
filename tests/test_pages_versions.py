"""The dashboard's Model versions panel in Chromium: deploying a rejected version by hand, and rolling back."""
from __future__ import annotations

import re
import sys

from playwright.sync_api import expect

from stt.models import store
from stt.runs import jobs, worker
from tests import tiny_whisper
from utils import database


def test_deploying_a_rejected_version_makes_counts_flags_and_labels_follow(page, conn, cfg, speech, fake_engine):
    tiny_whisper.build(cfg.model.path)
    for i in range(7):
        database.insert_item(conn, f"reviewed sentence {i}", speech["weather"], is_reviewed=1)
    fake_engine.wer = (0.2, 0.6)  # the checks refuse it
    run = worker.run(jobs.start_record(cfg)["job_id"], cfg)
    assert run["state"] == "done" and not run["deployed"]
    learned = set(fake_engine.seen.train)

    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/")
    run_outcome = page.locator("#runs-body tr:not(.rollback-row) .outcome")
    expect(page.locator("#stat-pending")).to_have_text(str(len(learned)))
    expect(run_outcome).to_contain_text("Rejected")
    rejected = page.locator("#versions li", has_text=run["version"])
    # Newer than the deployed original: choosing it deploys, it does not "roll back".
    expect(rejected.locator("button")).to_have_text("Deploy")
    rejected.locator("button").click()

    expect(page.locator("#stat-trained")).to_have_text(str(len(learned)))
    expect(page.locator("#stat-pending")).to_have_text("0")
    expect(rejected).to_contain_text("Deployed")
    expect(run_outcome).to_contain_text("Deployed by hand")
    # The history has a row for the deploy by hand itself, above the run's.
    expect(page.locator("#runs-body tr").first).to_contain_text(
        f"Version {run['version']} deployed from Model versions (version {store.ORIGINAL} replaced)")
    flags = {r[0] for r in conn.execute("SELECT id FROM s2s_training_data WHERE is_trained = 1")}
    assert flags == learned, "the assistant reads is_trained: it must say what the deployed model learned"

    expect(page.locator("#assistant-told")).to_contain_text(".deployed.json")  # no command: the file to watch

    cfg.assistant.on_deploy = (sys.executable, "-c", "import sys; sys.exit(2)")  # the live server's own settings
    original = page.locator("#versions li", has_text=store.ORIGINAL)
    expect(original.locator("button")).to_have_text("Roll back")
    original.locator("button").click()
    expect(page.locator("#stat-pending")).to_have_text(str(len(learned)))
    expect(page.locator("#assistant-told")).to_contain_text("Telling the assistant failed")
    expect(page.locator("#assistant-told")).to_contain_text("exited with code 2")
    expect(run_outcome).to_contain_text(re.compile("^Rejected"))
    expect(page.locator("#runs-body .rollback-row")).to_have_count(2)


def test_after_a_rollback_the_last_runs_banner_no_longer_announces_its_model(page, conn, cfg, speech, fake_engine):
    """Issue 34: the header said "v1 deployed" while the green box still read "new model deployed"."""
    tiny_whisper.build(cfg.model.path)
    for i in range(7):
        database.insert_item(conn, f"reviewed sentence {i}", speech["weather"], is_reviewed=1)
    run = worker.run(jobs.start_record(cfg)["job_id"], cfg)
    assert run["deployed"], run["message"]

    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/")
    expect(page.locator("#train-result-title")).to_contain_text("new model deployed")
    page.locator("#versions li", has_text=store.ORIGINAL).locator("button").click()
    expect(page.locator("#train-result-title")).to_contain_text(
        f"model (version {run['version']}) was deployed; version {store.ORIGINAL} is in use now")
    page.reload()
    expect(page.locator("#train-result-title")).to_contain_text(f"version {store.ORIGINAL} is in use now")
    expect(page.locator("#runs-body tr").first).to_contain_text("Rolled back")
    expect(page.locator("#runs-body tr").first).to_contain_text(f"version {run['version']} replaced")
