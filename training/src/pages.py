"""The two HTML pages; all their data comes from the JSON API, so they are thin shells."""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.get("/")
def dashboard():
    return render_template("index.html", page="dashboard")


@bp.get("/editor")
def editor():
    return render_template("editor.html", page="editor")
