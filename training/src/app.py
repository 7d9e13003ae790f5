"""The Flask application factory: configuration in, a ready app out.

Routes live in blueprints beside this file (api_data, api_audio, api_train,
pages); this module only wires them together.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from training.src import api_audio, api_data, api_train, db, errors, pages, security
from utils.config import Config, load_config

WWW = Path(__file__).resolve().parent.parent / "www"
# Room for a 10,000-character transcript in any encoding plus JSON framing;
# larger bodies are refused with 413 before they are read.
MAX_BODY_BYTES = 256 * 1024


def create_app(config: Config | None = None) -> Flask:
    cfg = config or load_config()
    security.check_binding(cfg)
    app = Flask(__name__, template_folder=str(WWW / "templates"), static_folder=str(WWW / "static"))
    app.config["S2S"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    errors.register(app)
    security.init_app(app)
    db.init_app(app)
    for blueprint in (api_data.bp, api_audio.bp, api_train.bp, pages.bp):
        app.register_blueprint(blueprint)
    return app
