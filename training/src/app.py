"""The Flask application factory: configuration in, a ready app out.

create_app() is the one place where start-up happens, step by step in the
order they must run; the blueprints beside this file (api_data, api_audio,
api_bulk, api_export, api_suggest, api_train, openapi, pages) only register routes.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from stt.models import store
from stt.review import suggestions
from stt.review.transcriber import model_fingerprint
from stt.runs import announce, jobs
from training.src import (
    api_audio,
    api_bulk,
    api_data,
    api_export,
    api_suggest,
    api_train,
    current,
    db,
    errors,
    openapi,
    pages,
    security,
    write_gate,
)
from utils import audio, audio_meta_rows, database
from utils.config import Config, load_config

WWW = Path(__file__).resolve().parent.parent / "www"
# Room for a 10,000-character transcript in any encoding plus JSON framing;
# larger bodies are refused with 413 before they are read.
MAX_BODY_BYTES = 256 * 1024


class ItemIdConverter(IntegerConverter):
    """`<item:id>`: any signed integer; one SQLite cannot hold is a 404 rather than an overflow error.

    Raising NotFound here, instead of failing the match, keeps Werkzeug from
    answering 405 because some other route's shape matched the path.
    """

    # ASCII digits without leading zeros: Werkzeug's \d also takes "01" and Arabic-Indic "١", which
    # int() reads as 1, so one item answered at many addresses.
    regex = r"-?(?:0|[1-9][0-9]*)"

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, signed=True)

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        if not -(2**63) <= number < 2**63:
            raise NotFound(f"No item with id {value}.")
        return number


def create_app(config: Config | None = None) -> Flask:
    """Each step that can fail raises ConfigError or DatabaseUnavailable with one line main.py prints."""
    cfg = config or load_config()
    # 1. Reachable beyond this computer only with an access token.
    security.check_binding(cfg)
    # 2. Open the shared database; create and migrate every table the app uses (utils/schema.py), and drop
    #    raw PCM facts measured under other [audio] settings.
    database.init_db(cfg.database.path, cfg.database.busy_timeout_ms)
    audio_meta_rows.forget_pcm_facts_unlike(cfg.database.path, audio.pcm_settings(cfg.audio),
                                            cfg.database.busy_timeout_ms)
    # 3. Runs that died while the app was down show as failed; a model swap cut short is repaired, and a
    #    deploy whose notice to the assistant was never written is announced now.
    jobs.recover(cfg)
    announce.catch_up(cfg)
    app = Flask(__name__, template_folder=str(WWW / "templates"), static_folder=str(WWW / "static"))
    app.config[current.KEY] = cfg
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    app.url_map.converters["item"] = ItemIdConverter
    # 4. The one background score-all job of this process (each app its own, so tests do not share it),
    #    told which model is deployed now, so it can score the backlog again after the next deploy (and keep
    #    what this one heard).
    app.extensions[api_suggest.JOB_KEY] = suggestions.ScoreJob(
        store.deployed_version(cfg.model.path),
        model_fingerprint(cfg.model.path) if cfg.model.path.is_dir() else None)
    # 5. Errors as JSON, access checks and headers, a bound on writes waiting for the database,
    #    per-request connections, then the routes.
    errors.register(app)
    security.init_app(app)
    write_gate.init_app(app)
    db.init_app(app)
    for blueprint in (api_data.bp, api_audio.bp, api_bulk.bp, api_export.bp, api_suggest.bp, api_train.bp,
                      openapi.bp, pages.bp):
        app.register_blueprint(blueprint)
    return app
