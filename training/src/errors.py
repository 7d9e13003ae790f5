"""Every error leaves the API as JSON `{error, message}` with its proper status, never an HTML page or a traceback.

The data layer and the training package raise domain exceptions that know nothing
of HTTP; each is mapped to its status here, once, so no view writes a 404 by hand.
"""
from __future__ import annotations

import errno
import logging
import sqlite3

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from stt.runs import jobs
from training.src import current
from utils import audio, bulk, database, disk

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by views for a client-facing error; `extra` is merged into the JSON body."""

    def __init__(self, status: int, error: str, message: str, **extra: object):
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra


# Why a run, cancel or rollback was refused (stt.runs.jobs.JobError.error), as HTTP.
JOB_STATUS = {"job_running": 409, "not_running": 409, "rollback_failed": 409, "not_found": 404,
              "model_missing": 400, "nothing_pending": 400, "worker_failed": 503,
              "model_read_only": 409, "language_mismatch": 400, "disk_full": 507, "model_busy": 409}


def _os_error(exc: OSError):
    """A file the request needed could not be written or read: one sentence naming it, never a traceback."""
    if isinstance(exc, disk.DiskShort):
        return error_response(507, "disk_full", str(exc))
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return error_response(507, "disk_full", f"The disk is full{where}: free space on it and try again. "
                              "Nothing the request would have changed was changed.")
    log.warning("OS error on %s %s: %s", request.method, request.path, exc)
    return error_response(500, "os_error", f"{exc.strerror or exc}{where}.")


def error_response(status: int, error: str, message: str, **extra: object):
    body = {"error": error, "message": message, **extra}
    return jsonify(body), status


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response, status = error_response(exc.status, exc.error, exc.message, **exc.extra)
        if "retry_after_s" in exc.extra:  # 429: clients and proxies read the wait from the header
            response.headers["Retry-After"] = str(exc.extra["retry_after_s"])
        return response, status

    @app.errorhandler(jobs.JobError)
    def _job_error(exc: jobs.JobError):
        # A code without a status of its own is still the job's refusal, never a crash of the handler.
        return error_response(JOB_STATUS.get(exc.error, 409), exc.error, exc.message, **exc.extra)

    @app.errorhandler(database.NotFound)
    def _not_found(exc: database.NotFound):
        return error_response(404, "not_found", f"No item with id {exc.args[0] if exc.args else '?'}.")

    @app.errorhandler(audio.AudioError)
    def _undecodable(exc: audio.AudioError):
        item = (request.view_args or {}).get("item_id", "?")
        return error_response(422, "undecodable_audio", f"The audio of item {item} cannot be played: {exc}. "
                              "The transcript can still be edited.")

    @app.errorhandler(database.AlreadyTrained)
    def _already_trained(exc: database.AlreadyTrained):
        return error_response(409, "already_trained", "This recording was already used for training, so it "
                              "cannot check whether a new model forgets: choose one the model has not learned.",
                              field="regression")

    @app.errorhandler(database.VersionConflict)
    def _conflict(exc: database.VersionConflict):
        response, status = error_response(412, "version_conflict", "Someone else changed this item since you "
                                          "opened it. Their version is in 'current'.", current=exc.current)
        response.set_etag(exc.current["version"])
        return response, status

    @app.errorhandler(bulk.StalePreview)
    def _stale_preview(exc: bulk.StalePreview):
        return error_response(412, "preview_stale", "The matches changed since the preview: preview again.",
                              total=len(exc.matches), tag=bulk.tag(exc.matches))

    @app.errorhandler(bulk.UnknownBatch)
    def _unknown_batch(exc: bulk.UnknownBatch):
        return error_response(404, "not_found", f"No find-and-replace batch {exc.args[0]}.")

    @app.errorhandler(bulk.AlreadyUndone)
    def _already_undone(exc: bulk.AlreadyUndone):
        return error_response(409, "already_undone", f"Batch {exc.args[0]} was undone already.")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        name = (exc.name or "error").lower().replace(" ", "_")
        response, status = error_response(exc.code or 500, name, exc.description or exc.name)
        # Keep the exception's own headers (Allow on 405, Content-Range on 416), not its HTML content type.
        for header, value in exc.get_headers():
            if header.lower() != "content-type":
                response.headers[header] = value
        return response, status

    app.register_error_handler(OSError, _os_error)

    @app.errorhandler(sqlite3.OperationalError)
    def _db_busy(exc: sqlite3.OperationalError):
        # "database is locked" after the busy timeout, or a file we cannot open:
        # the client may retry, so 503 rather than 500.
        log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
        if "disk is full" in str(exc):  # SQLITE_FULL: nothing was written, and retrying will not help
            return error_response(507, "disk_full", f"The disk that holds the database "
                                  f"({current.config().database.path}) is full, so nothing was changed: free "
                                  "space on it and try again.")
        return error_response(503, "database_unavailable", f"The database is unavailable: {exc}. Try again.")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")
