"""What the deployed model hears in each clip, kept beside the stored transcript.

A suggestion is stored per (item, model fingerprint): a clip is transcribed once
per model, and a new or rolled-back model gets its own rows. `wer` measures how
far the stored transcript is from the model's text; when the reviewer edits the
transcript only `wer` is recomputed, never the (slow) transcription.

The "score all" job transcribes every unreviewed item in a background thread of
the web process, so the list can be sorted by disagreement (`wer`) or by the
model's uncertainty (`avg_logprob`) before anyone listens to a clip.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sqlite3
import threading
from typing import Any

from stt.assistant.words import word_error_rate
from stt.models import store
from stt.models.model_format import ModelFormatError
from stt.review.transcriber import Transcriber, check_model, get_transcriber
from utils import audio, background, database, suggestion_rows
from utils.config import Config

log = logging.getLogger(__name__)


def _transcript_version(transcript: str | None) -> str:
    return hashlib.sha1(repr(transcript).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _row(item_id: int, fingerprint: str, text: str, avg_logprob: float, wer: float, cached: bool,
         words_json: str | None) -> dict[str, Any]:
    # Rows stored before word timings existed have none: the editor then shows the plain diff.
    return {"item_id": item_id, "text": text, "avg_logprob": avg_logprob, "wer": wer,
            "model_fingerprint": fingerprint, "cached": cached, "words": json.loads(words_json or "[]")}


def _transcribe_and_store(cfg: Config, conn: sqlite3.Connection, model: Transcriber, item: dict[str, Any]
                          ) -> dict[str, Any]:
    """Decode, transcribe, store; AudioError propagates for the caller to report."""
    samples = audio.load_for_whisper(database.get_audio(conn, item["id"]), cfg.audio)
    result = model.transcribe(samples)
    wer = word_error_rate(item["transcript"], result.text)
    words = json.dumps([dataclasses.asdict(w) for w in result.words])
    suggestion_rows.store(conn, item["id"], model.fingerprint, _transcript_version(item["transcript"]), result.text,
                          result.avg_logprob, wer, database.now(), words)
    return _row(item["id"], model.fingerprint, result.text, result.avg_logprob, wer, False, words)


def suggest(cfg: Config, conn: sqlite3.Connection, item_id: int) -> dict[str, Any]:
    """The current model's transcript of one item, from the table when this model already heard it.

    Raises database.NotFound, audio.AudioError, ModelFormatError or ModelLoadError.
    """
    item = database.get_item(conn, item_id)
    _format, fingerprint = check_model(cfg.model.path)
    row = suggestion_rows.stored(conn, item_id, fingerprint)
    if row is not None:
        version = _transcript_version(item["transcript"])
        wer = row["wer"]
        if row["transcript_version"] != version:
            wer = word_error_rate(item["transcript"], row["text"])
            suggestion_rows.update_wer(conn, item_id, fingerprint, version, wer)
        return _row(item_id, fingerprint, row["text"], row["avg_logprob"], wer, True, row["words_json"])
    return _transcribe_and_store(cfg, conn, get_transcriber(cfg.model.path), item)


class ScoreJob:
    """Transcribe every unscored, unreviewed item in one daemon thread; one run at a time.

    A thread rather than a process: the model is already loaded in this process
    for single-item suggestions and is shared with them. Progress is read by
    the API; cancelling takes effect between two clips.
    """

    def __init__(self, version: str | None = None, fingerprint: str | None = None) -> None:
        # The deployed version when last looked at (stt.models.store): it changes only when a run
        # deploys a model or a rollback puts one back, never when a folder is copied in by hand.
        self._seen = version
        # The deployed model's fingerprint when last looked at, so its suggestions outlive one deploy.
        self._fingerprint = fingerprint
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._why = "Cancelled"
        self._thread: threading.Thread | None = None
        self._progress: dict[str, Any] = {"state": "idle", "done": 0, "total": 0, "message": ""}

    def progress(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._progress)

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._progress.update(changes)

    def running(self) -> bool:
        # The state, not the thread's liveness: a client that saw "done" may start again at once.
        with self._lock:
            return self._progress["state"] == "running"

    def start(self, cfg: Config) -> bool:
        """Start a run; False when one is already running."""
        with self._lock:
            if self._progress["state"] == "running":
                return False
            self._cancel.clear()
            self._why = "Cancelled"
            self._progress = {"state": "running", "done": 0, "total": 0, "message": "Loading the model."}
            self._thread = threading.Thread(target=self._run, args=(cfg,), name="s2s-score-all", daemon=True)
            self._thread.start()
            return True

    def after_deploy(self, cfg: Config) -> bool:
        """Start scoring when a run or a rollback deployed a model since last looked at (and the config
        allows it); True when a run started. Cheap: one small file read when nothing changed."""
        version = store.deployed_version(cfg.model.path)
        with self._lock:
            changed, self._seen = version != self._seen, version
        if not changed:
            return False
        try:
            _format, fingerprint = check_model(cfg.model.path)
        except ModelFormatError:  # a swap half done or a folder emptied: nothing to score with
            return False
        self._keep_suggestions_of(cfg, fingerprint)
        return self.start(cfg) if cfg.training.rescore_after_deploy else False

    def _keep_suggestions_of(self, cfg: Config, fingerprint: str) -> None:
        """Keep what the model now deployed and the one before it heard; the rest can never be shown
        again (a fingerprint names one model folder) and would grow by a row per item per deploy."""
        with self._lock:
            previous, self._fingerprint = self._fingerprint, fingerprint
        conn = database.connect(cfg.database.path, cfg.database.busy_timeout_ms)
        try:
            with database.transaction(conn):
                suggestion_rows.keep_only(conn, [f for f in (fingerprint, previous) if f])
        except sqlite3.OperationalError:
            pass  # the assistant held the lock: the next deploy prunes
        finally:
            conn.close()

    def cancel(self, why: str = "Cancelled") -> bool:
        """Ask the running job to stop after the current clip, saying `why`; False when none runs."""
        if not self.running():
            return False
        with self._lock:
            self._why = why
        self._cancel.set()
        return True

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, cfg: Config) -> None:
        background.lower_this_thread()  # hours of decoding at most: the assistant and the pages come first
        conn = None
        try:
            conn = database.connect(cfg.database.path, cfg.database.busy_timeout_ms)
            replaced = self._score_all(cfg, conn)
        except Exception as exc:  # the thread must always end in a reported state
            log.exception("score-all job failed")
            self._update(state="failed", message=str(exc))
            replaced = False
        finally:
            if conn is not None:
                conn.close()
        if replaced:
            self.start(cfg)

    def _score_all(self, cfg: Config, conn: sqlite3.Connection) -> bool:
        """Score every unscored item with the deployed model; True when another model was deployed meanwhile
        (scoring belongs to one model: what the replaced one heard would order nothing)."""
        version = store.deployed_version(cfg.model.path)
        model = get_transcriber(cfg.model.path)
        ids = suggestion_rows.unscored_ids(conn, model.fingerprint)
        self._update(total=len(ids), version=version, message=f"Transcribing {len(ids)} unreviewed items.")
        undecodable = 0
        for done, item_id in enumerate(ids, start=1):
            if self._cancel.is_set():
                with self._lock:
                    why = self._why
                self._update(state="cancelled", message=f"{why} after {done - 1} of {len(ids)} items.")
                return False
            try:
                _transcribe_and_store(cfg, conn, model, database.get_item(conn, item_id))
            except database.NotFound:
                pass  # deleted by the assistant meanwhile
            except audio.AudioError:
                undecodable += 1
            self._update(done=done)
            if store.deployed_version(cfg.model.path) != version:
                self._update(state="stopped", message=f"Stopped after {done} of {len(ids)} items: another "
                             "model was deployed, so scoring starts again with it.")
                return True
        skipped = f"; {undecodable} could not be decoded" if undecodable else ""
        named = f" with version {version}" if version else ""
        self._update(state="done", message=f"Transcribed {len(ids) - undecodable} items{named}{skipped}.")
        return False
