"""The API contract as OpenAPI 3.0, served at /api/openapi.json.

Kept beside the routes as data rather than generated: a test checks that every
/api route is described here and nothing else, and a schemathesis run checks
the live app's answers against it.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from utils.config import TRAINING_MODES as MODES

bp = Blueprint("openapi", __name__, url_prefix="/api")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ref("Error"), "Error") for c in codes}


def _id_param(name: str = "item_id") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}}


def _job_param() -> dict[str, Any]:
    # Run ids are 12 hex digits (utils.runs.create); the pattern also keeps /api/train/status and
    # /api/train/runs, which the same path template would match, out of this operation.
    return {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{12}$"}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


FLAG = {"type": "string", "enum": ["true", "false", "1", "0"]}
BODY_FLAG = {"oneOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]}
# The characters params.BAD_CHARS refuses in typed text (C0 and C1 controls, bidi overrides), as a class body.
_BAD = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069"
_TEXT = "[^" + _BAD + "]"
NULLABLE_NUMBER = {"type": "number", "nullable": True}
NULLABLE_STRING = {"type": "string", "nullable": True}
NULLABLE_INT = {"type": "integer", "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "message"],
              "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
    "Health": {"type": "object", "required": ["status", "database", "model"], "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "database": {"type": "object", "required": ["path", "ok"]},
        "model": {"type": "object", "required": ["path", "present"], "properties": {
            "present": {"type": "boolean", "description": "a model is there and, as far as can be told "
                        "without loading it, loads"},
            "message": {"type": "string", "description": "why it is not present"}}},
        "disk": {"type": "object", "required": ["ok", "message"], "description": "only when the disk of the "
                 "database or the model has less free than the margin kept for the assistant "
                 "(database.keep_free_mb), or the last warm-up stopped for want of space", "properties": {
                     "ok": {"type": "boolean"}, "message": {"type": "string"}}}}},
    "Stats": {"type": "object", "required": ["total", "reviewed", "trained", "pending_training"], "properties": {
        k: {"type": "integer", "minimum": 0}
        for k in ("total", "reviewed", "trained", "pending_training", "heldout", "regression", "unreviewed",
                  "unusable", "unmeasured")} | {
        # Words in the held-out set (null: over 200 held-out items, not counted).
        "heldout_words": {"type": "integer", "minimum": 0, "nullable": True},
        # Why reviewed items are kept out of every run:
        # {"not_text" | "no_words" | "no_audio" | "undecodable" | "too_long": count}.
        "unusable_reasons": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}}},
    "ItemSummary": {"type": "object",
                    "required": ["id", "transcript", "is_reviewed", "is_trained", "timestamp", "no_speech"],
                    "properties": {
                        "id": {"type": "integer"}, "transcript": NULLABLE_STRING,
                        "is_reviewed": {"type": "integer", "enum": [0, 1]},
                        "is_trained": {"type": "integer", "enum": [0, 1]},
                        "timestamp": NULLABLE_STRING, "duration_s": NULLABLE_NUMBER,
                        "problem": NULLABLE_STRING, "no_speech": {"type": "boolean"},
                        # Set on reviewed, untrained items no run can use, to the reason (stats' unusable_reasons).
                        "unusable": {**NULLABLE_STRING,
                                     "enum": ["not_text", "no_words", "no_audio", "undecodable", "too_long", None]},
                        # Why the audio cannot be played, once measured; null when it plays or is not measured yet.
                        "audio_error": NULLABLE_STRING,
                        # A regression check (every run must still get it right), or held out to measure
                        # every run; neither is ever trained on.
                        "regression": {"type": "integer", "enum": [0, 1]}, "held_out": {"type": "boolean"}}},
    "Item": {"allOf": [_ref("ItemSummary"), {"type": "object", "required": ["version", "regression", "held_out"],
                                             "properties": {"version": {"type": "string"}}}]},
    "ItemDetail": {"allOf": [_ref("Item"), {"type": "object", "properties": {
        "audio": {"type": "string", "format": "byte"}, "audio_mime": NULLABLE_STRING,
        "sample_rate": NULLABLE_INT, "audio_error": NULLABLE_STRING,
        "prev_id": NULLABLE_INT, "next_id": NULLABLE_INT,
        "prev_unreviewed_id": NULLABLE_INT, "next_unreviewed_id": NULLABLE_INT}}]},
    "ItemUpdate": {"type": "object",
                   "anyOf": [{"required": ["transcript"]}, {"required": ["is_reviewed"]}, {"required": ["regression"]},
                             {"required": ["no_speech"]}],
                   # no_speech: true empties the transcript and reviews the item: words or is_reviewed: false
                   # beside it contradict it (400). "Words" are what training_sets.BLANKS does not strip.
                   "not": {"allOf": [
                       {"required": ["no_speech"], "properties": {"no_speech": {"enum": [True, 1]}}},
                       {"anyOf": [{"required": ["transcript"],
                                   "properties": {"transcript": {"pattern": "[^ \\t\\n\\u000b\\f\\r\\u00a0]"}}},
                                  {"required": ["is_reviewed"],
                                   "properties": {"is_reviewed": {"enum": [False, 0]}}}]}]},
                   "properties": {
        "transcript": {"type": "string", "maxLength": 10000,
                       # The same characters params.BAD_CHARS refuses: C0 and C1 controls, bidi overrides.
                       "pattern": "^" + _TEXT + "*$"},
        "is_reviewed": BODY_FLAG,
        "regression": BODY_FLAG,
        # true: the clip holds no speech (its transcript becomes empty and it is reviewed); words clear it.
        "no_speech": BODY_FLAG}},
    "Peaks": {"type": "object", "required": ["peaks", "duration_s", "sample_rate"], "properties": {
        "peaks": {"type": "array", "items": {"type": "number", "minimum": 0}},
        "duration_s": {"type": "number"}, "sample_rate": {"type": "integer"}}},
    "TrainStarted": {"type": "object", "required": ["success", "trained_count", "message", "job_id"], "properties": {
        "success": {"type": "boolean"}, "trained_count": {"type": "integer"}, "heldout_count": {"type": "integer"},
        "message": {"type": "string"}, "job_id": {"type": "string"}}},
    "Idle": {"type": "object", "required": ["state"], "properties": {"state": {"type": "string", "enum": ["idle"]}}},
    "Run": {"type": "object", "required": ["job_id", "state", "step", "total", "percent"], "properties": {
        "job_id": {"type": "string"},
        "state": {"type": "string", "enum": ["queued", "preparing", "training", "evaluating", "saving", "done",
                                             "failed", "cancelled"]},
        "phase": NULLABLE_STRING, "step": {"type": "integer"}, "total": {"type": "integer"},
        "percent": {"type": "number"}, "eta_s": NULLABLE_NUMBER, "loss": NULLABLE_NUMBER, "mode": NULLABLE_STRING,
        "items": {"type": "integer"}, "heldout_items": {"type": "integer"}, "started_at": {"type": "string"},
        "finished_at": NULLABLE_STRING, "duration_s": NULLABLE_NUMBER, "message": NULLABLE_STRING,
        "deployed": {"type": "boolean"}, "active": {"type": "boolean"}, "version": NULLABLE_STRING,
        "wer_before": NULLABLE_NUMBER, "wer_after": NULLABLE_NUMBER, "regression_wer_before": NULLABLE_NUMBER,
        "regression_wer_after": NULLABLE_NUMBER, "result": {"type": "object"},
        # An active run's place in the whole run (one bar): null before a first run of the mode has finished.
        "elapsed_s": NULLABLE_NUMBER, "remaining_s": NULLABLE_NUMBER, "overall_percent": NULLABLE_NUMBER}},
    "ModelInfo": {"type": "object", "required": ["path", "name", "format", "present", "version", "versions"],
                  "properties": {
        "path": {"type": "string"}, "name": NULLABLE_STRING, "format": NULLABLE_STRING, "present": {"type": "boolean"},
        "version": NULLABLE_STRING, "versions": {"type": "array", "items": {"type": "object"}},
        # What the assistant may watch (stt/runs/announce.py), and how the last on_deploy command went.
        "deployed_file": {"type": "string"}, "deployed": {"type": ["object", "null"]},
        "assistant_told": {"type": ["object", "null"]}}},
    "Conflict": {"type": "object", "required": ["error", "message", "current"], "properties": {
        "error": {"type": "string"}, "message": {"type": "string"}, "current": _ref("Item")}},
    "Suggestion": {"type": "object",
                   "required": ["item_id", "text", "avg_logprob", "wer", "model_fingerprint", "cached"],
                   "properties": {"item_id": {"type": "integer"}, "text": {"type": "string"},
                                  "avg_logprob": {"type": "number", "maximum": 0},
                                  "wer": {"type": "number", "minimum": 0},
                                  "model_fingerprint": {"type": "string"}, "cached": {"type": "boolean"},
                                  # Each word with its span in the clip (s) and the model's probability of it.
                                  "words": {"type": "array", "items": {
                                      "type": "object", "required": ["word", "start", "end", "probability"],
                                      "properties": {"word": {"type": "string"}, "start": {"type": "number"},
                                                     "end": {"type": "number"},
                                                     "probability": {"type": "number", "minimum": 0,
                                                                     "maximum": 1}}}}}},
    "BulkSearch": {"type": "object", "required": ["find", "replace"], "properties": {
        # Something besides blanks, and none of the characters params.BAD_CHARS refuses.
        "find": {"type": "string", "maxLength": 200, "pattern": "^" + _TEXT + "*[^\\s" + _BAD + "]" + _TEXT + "*$"},
        "replace": {"type": "string", "maxLength": 10000, "pattern": "^" + _TEXT + "*$"},
        "whole_word": BODY_FLAG, "match_case": BODY_FLAG, "include_reviewed": BODY_FLAG}},
    "BulkPreview": {"type": "object", "required": ["total", "tag", "matches"], "properties": {
        "total": {"type": "integer", "minimum": 0}, "tag": {"type": "string"},
        "matches": {"type": "array", "items": {"type": "object", "required": ["id", "version", "transcript",
                                                                            "replaced"]}}}},
    "BulkResult": {"type": "object", "required": ["batch_id", "skipped"], "properties": {
        "batch_id": {"type": "string"}, "changed": {"type": "integer"}, "restored": {"type": "integer"},
        "skipped": {"type": "array", "items": {"type": "object", "required": ["id", "reason"]}}}},
    "ScoreProgress": {"type": "object", "required": ["state", "done", "total", "message"], "properties": {
        # "stopped": another model was deployed meanwhile, and scoring started again with it.
        "state": {"type": "string", "enum": ["idle", "running", "done", "failed", "cancelled", "stopped"]},
        "done": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 0},
        "message": {"type": "string"},
        # The deployed version the scoring belongs to (null for a model copied in by hand).
        "version": NULLABLE_STRING,
        # On GET: unreviewed items the deployed model has transcribed, and how many it writes differently.
        "scored": {"type": "integer", "minimum": 0}, "differ": {"type": "integer", "minimum": 0}}},
}

PATHS: dict[str, Any] = {
    "/api/health": {"get": {"summary": "Health check", "responses": {
        "200": _json(_ref("Health")), "503": _json(_ref("Health"), "Database unreadable")}}},
    "/api/data/stats": {"get": {"summary": "Counts of items", "responses": {"200": _json(_ref("Stats"))}}},
    "/api/data/style": {"get": {
        "summary": "How the transcripts to train on are written (capitals, punctuation, numbers): the model learns it",
        "responses": {"200": _json({"type": "object", "required": ["transcripts", "note"], "properties": {
            **{k: {"type": "integer", "minimum": 0} for k in (
                "transcripts", "without_capitals", "without_punctuation", "numbers_in_words", "with_digits")},
            "note": NULLABLE_STRING}})}}},
    "/api/data": {"get": {
        "summary": "List items (never audio); total in X-Total-Count",
        "parameters": [_query("reviewed", FLAG), _query("trained", FLAG), _query("no_speech", FLAG),
                       _query("unusable", FLAG),
                       _query("q", {"type": "string"}),
                       _query("sort", {"type": "string", "enum": ["id", "timestamp", "transcript", "disagreement",
                                                                 "uncertainty"]}),
                       _query("order", {"type": "string", "enum": ["asc", "desc"]}),
                       _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                       _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**12})],
        "responses": {"200": _json({"type": "array", "items": _ref("ItemSummary")}), **_errors(400)}}},
    "/api/data/next": {"get": {
        "summary": "Oldest unreviewed item after `after`, wrapping",
        "parameters": [_query("after", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}),
                       _query("sort", {"type": "string", "enum": ["id", "disagreement", "uncertainty"]})],
        "responses": {"200": _json({"type": "object", "required": ["id"], "properties": {"id": NULLABLE_INT}}),
                      **_errors(400)}}},
    "/api/data/{item_id}": {
        "get": {"summary": "One item with its audio (base64) and neighbours",
                "parameters": [_id_param(), _query("audio", FLAG)],
                "responses": {"200": _json(_ref("ItemDetail")), **_errors(400, 404)}},
        "put": {"summary": "Edit transcript, review flag or regression flag; If-Match protects against lost updates",
                # An entity tag with something in it (`"v"`, `W/"v"`, `*`): an empty one is a 400.
                "parameters": [_id_param(), {"name": "If-Match", "in": "header", "required": False,
                                             "schema": {"type": "string", "pattern": '^ *(W/)?"?[^" ]+"? *$'}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ItemUpdate")}}},
                "responses": {"200": _json(_ref("Item")), "412": _json(_ref("Conflict"), "Stale version"),
                              **_errors(400, 404, 409, 413)}}},
    "/api/data/{item_id}/audio": {"get": {
        "summary": "Playable audio file; supports Range", "parameters": [_id_param()],
        "responses": {"200": {"description": "Audio", "content": {"audio/*": {}}},
                      "206": {"description": "Partial audio", "content": {"audio/*": {}}},
                      **_errors(404, 416, 422)}}},
    "/api/data/{item_id}/peaks": {"get": {
        "summary": "Waveform peaks", "parameters": [_id_param(), _query("buckets", {"type": "integer", "minimum": 1,
                                                                                   "maximum": 10000})],
        "responses": {"200": _json(_ref("Peaks")), **_errors(400, 404, 422)}}},
    "/api/data/{item_id}/transcribe": {"post": {
        "summary": "What the deployed model hears in the item's audio, cached per model, with its WER against the "
                   "stored transcript", "parameters": [_id_param()],
        "responses": {"200": _json(_ref("Suggestion")), **_errors(404, 409, 422)}}},
    "/api/bulk/preview": {"post": {
        "summary": "Every transcript a find-and-replace would change (the first 1000 shown), with a tag for them all",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("BulkSearch")}}},
        "responses": {"200": _json(_ref("BulkPreview")), **_errors(400, 413)}}},
    "/api/bulk/apply": {"post": {
        "summary": "Apply to the ticked matches (items) or to all (all: true, If-Match: the preview's tag), as one "
                   "batch",
        "parameters": [{"name": "If-Match", "in": "header", "required": False,
                        "schema": {"type": "string", "pattern": '^ *(W/)?"?[^" ]+"? *$'}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"allOf": [
            _ref("BulkSearch"), {"anyOf": [{"required": ["items"]},
                                           {"required": ["all"], "properties": {"all": {"enum": [True, 1]}}}],
                                 "properties": {"items": {"type": "array", "items": {
                                     "type": "object", "required": ["id", "version"],
                                     "properties": {"id": {"type": "integer"}, "version": {"type": "string"}}}},
                                     "all": BODY_FLAG}}]}}}},
        "responses": {"200": _json(_ref("BulkResult")), "412": _json(_ref("Error"), "The matches changed"),
                      **_errors(400, 413)}}},
    "/api/bulk/{batch_id}/undo": {"post": {
        "summary": "Undo a batch; items edited since are left alone and listed",
        "parameters": [{"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": _json(_ref("BulkResult")), **_errors(404, 409)}}},
    "/api/bulk": {"get": {"summary": "The latest find-and-replace batches, newest first",
                          "responses": {"200": _json({"type": "array", "items": {"type": "object"}})}}},
    "/api/export": {"get": {
        "summary": "The reviewed clips as a zipped Hugging Face audiofolder dataset (as `main.py export` writes)",
        "parameters": [_query("untrained", FLAG), _query("wav16k", FLAG)],
        "responses": {"200": {"description": "Zip archive", "content": {"application/zip": {}}}, **_errors(400)}}},
    "/api/suggestions/score": {
        "get": {"summary": "Progress of the score-all job", "responses": {"200": _json(_ref("ScoreProgress"))}},
        "post": {"summary": "Transcribe all unreviewed items not yet heard by the deployed model, in the background",
                 "responses": {"202": _json(_ref("ScoreProgress"), "Started"), **_errors(409)}}},
    "/api/suggestions/score/cancel": {"post": {
        "summary": "Stop the score-all job after the current clip",
        "responses": {"202": _json(_ref("ScoreProgress"), "Cancelling"), **_errors(409)}}},
    "/api/train": {"post": {
        "summary": "Start fine-tuning on pending items in a background process",
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"mode": {"type": "string", "enum": list(MODES)}}}}}},
        "responses": {"202": _json(_ref("TrainStarted"), "Started"), **_errors(400, 409, 503, 507)}}},
    "/api/train/status": {"get": {"summary": "The latest run, or {state: idle}",
                                  "responses": {"200": _json({"oneOf": [_ref("Run"), _ref("Idle")]})}}},
    "/api/train/runs": {"get": {"summary": "All runs, newest first",
                                "responses": {"200": _json({"type": "array", "items": _ref("Run")})}}},
    "/api/train/{job_id}": {"get": {"summary": "One run", "parameters": [_job_param()],
                                    "responses": {"200": _json(_ref("Run")), **_errors(404)}}},
    "/api/train/{job_id}/cancel": {"post": {"summary": "Stop a run after its current step",
                                            "parameters": [_job_param()],
                                            "responses": {"202": _json({"type": "object"}), **_errors(404, 409)}}},
    "/api/model": {"get": {"summary": "The deployed model and kept versions",
                           "responses": {"200": _json(_ref("ModelInfo"))}}},
    "/api/model/disk": {"get": {
        "summary": "Bytes of the deployed model, its kept versions and its rebuildable caches; free bytes on its disk",
        "responses": {"200": _json({"type": "object", "required": ["model_bytes", "versions_bytes", "caches_bytes",
                                                                   "free_bytes"],
                                    "properties": {k: {"type": "integer", "minimum": 0} for k in (
                                        "model_bytes", "versions_bytes", "caches_bytes", "free_bytes")}})}}},
    "/api/model/caches": {"delete": {
        "summary": "Delete the rebuildable caches beside the model (encoder states, what the model heard)",
        "responses": {"200": _json({"type": "object", "required": ["freed_bytes", "message"],
                                    "properties": {"freed_bytes": {"type": "integer", "minimum": 0},
                                                   "message": {"type": "string"}}}), **_errors(409)}}},
    "/api/model/rollbacks": {"get": {
        "summary": "Kept versions deployed by hand (rollback, or forward again), newest first",
        "responses": {"200": _json({"type": "array", "items": {
            "type": "object", "required": ["at", "version", "previous"],
            "properties": {"at": {"type": "string"}, "version": {"type": "string"},
                           "previous": NULLABLE_STRING}}})}}},
    "/api/model/rollback": {"post": {
        "summary": "Deploy a kept version again",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["version"],
            "properties": {"version": {"type": "string", "minLength": 1}}}}}},
        "responses": {"200": _json({"type": "object"}), **_errors(400, 404, 409, 507)}}},
    "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}},
}


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "S2S Training API", "version": "1.0.0",
                 "description": "Review speech transcripts and fine-tune the local Whisper model. See docs/api.md."},
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(spec())
