"""The reviewed clips as a download: the same audiofolder dataset `main.py export` writes, zipped."""
from __future__ import annotations

import tempfile
import zipfile

from flask import Blueprint, send_file

from training.src import current, params
from training.src.db import get_db
from utils import disk, export

bp = Blueprint("export", __name__, url_prefix="/api")


@bp.get("/export")
def export_zip():
    """Built in an anonymous temporary file, not in memory: a dataset is as large as its audio."""
    cfg = current.config()
    spool = tempfile.TemporaryFile()
    try:
        with zipfile.ZipFile(spool, "w") as archive:
            export.write_dataset(get_db(), export.ZipSink(archive, "s2s-dataset/"), cfg,
                                 untrained_only=params.bool_arg("untrained") is True,
                                 wav16k=params.bool_arg("wav16k") is True)
    except OSError as exc:
        spool.close()
        # A write to the nameless spool: name the folder it lives in (the margin's refusal names it already).
        if exc.filename is None and not isinstance(exc, disk.DiskShort):
            raise OSError(exc.errno, exc.strerror, f"the temporary folder {tempfile.gettempdir()}") from exc
        raise
    spool.seek(0)
    return send_file(spool, mimetype="application/zip", as_attachment=True, download_name="s2s-dataset.zip")
