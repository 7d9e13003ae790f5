"""Every error leaves the API as JSON `{error, message}` with its proper status, never an HTML page or a traceback.

The data layer and the training package raise domain exceptions that know nothing
of HTTP; each is mapped to its status here, once, so no view writes a 404 by hand.
"""
from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

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


def _api_error(exc: ApiError):
    response, status = error_response(exc.status, exc.error, exc.message, **exc.extra)
    if "retry_after_s" in exc.extra:  # 429/503: clients and proxies read the wait from the header
        response.headers["Retry-After"] = str(exc.extra["retry_after_s"])
    return response, status


def _conflict(exc: database.VersionConflict):
    response, status = error_response(412, "version_conflict", "Someone else changed this item since you "
                                      "opened it. Their version is in 'current'.", current=exc.current)
    response.set_etag(exc.current["version"])
    return response, status


def _http_error(exc: HTTPException):
    name = (exc.name or "error").lower().replace(" ", "_")
    response, status = error_response(exc.code or 500, name, exc.description or exc.name)
    # Keep the exception's own headers (Allow on 405, Content-Range on 416), not its HTML content type.
    for header, value in exc.get_headers():
        if header.lower() != "content-type":
            response.headers[header] = value
    return response, status


# SQLite errors a retry can cure: another program holds the lock, or the file is briefly out of reach.
_RETRYABLE = ("locked", "busy", "unable to open", "disk i/o error")


def _database_error(exc: sqlite3.OperationalError):
    text = str(exc)
    log.warning("database error on %s %s: %s", request.method, request.path, text)
    if "disk is full" in text:  # SQLITE_FULL: nothing was written, and retrying will not help
        return error_response(507, "disk_full", f"The disk that holds the database "
                              f"({current.config().database.path}) is full, so nothing was changed: free "
                              "space on it and try again.")
    if any(word in text.lower() for word in _RETRYABLE):
        return error_response(503, "database_unavailable", f"The database is unavailable: {exc}. Try again.")
    # A schema the app did not expect (a table or column another program dropped or changed): the service is
    # unavailable, but a retry alone will not cure it, so the answer does not invite one.
    return error_response(503, "database_schema", f"The database does not hold what the app expects ({exc}): "
                          "another program may have changed or removed its tables. Check "
                          f"{current.config().database.path}; restarting the app repairs its own tables.")


def _unexpected(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")


def _fixed(status: int, error: str, message: Callable[[Any], str], **extra: object) -> Callable[[Any], Any]:
    """A handler for an exception whose answer is one status, one code and one sentence."""
    return lambda exc: error_response(status, error, message(exc), **extra)


# Each domain exception and its answer, most specific first (Flask picks the nearest class anyway).
HANDLERS: list[tuple[type[BaseException], Callable[[Any], Any]]] = [
    (ApiError, _api_error),
    # A code without a status of its own is still the job's refusal, never a crash of the handler.
    (jobs.JobError, lambda exc: error_response(JOB_STATUS.get(exc.error, 409), exc.error, exc.message, **exc.extra)),
    (database.NotFound, _fixed(404, "not_found", lambda exc: f"No item with id {exc.args[0] if exc.args else '?'}.")),
    (audio.AudioError, lambda exc: error_response(
        422, "undecodable_audio", f"The audio of item {(request.view_args or {}).get('item_id', '?')} cannot be "
        f"played: {exc}. The transcript can still be edited.")),
    (database.AlreadyTrained, _fixed(409, "already_trained", lambda exc: (
        "This recording was already used for training, so it cannot check whether a new model forgets: choose "
        "one the model has not learned."), field="regression")),
    (database.VersionConflict, _conflict),
    (bulk.StalePreview, lambda exc: error_response(
        412, "preview_stale", "The matches changed since the preview: preview again.", total=len(exc.matches),
        tag=bulk.tag(exc.matches))),
    (bulk.UnknownBatch, _fixed(404, "not_found", lambda exc: f"No find-and-replace batch {exc.args[0]}.")),
    (bulk.AlreadyUndone, _fixed(409, "already_undone", lambda exc: f"Batch {exc.args[0]} was undone already.")),
    (HTTPException, _http_error),
    (OSError, _os_error),
    (sqlite3.OperationalError, _database_error),
    (Exception, _unexpected),
]


def register(app: Flask) -> None:
    for exception, handler in HANDLERS:
        app.register_error_handler(exception, handler)
