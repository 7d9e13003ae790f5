"""The app's configuration wherever a request or app context needs it: one name for `app.config["S2S"]`."""
from __future__ import annotations

from flask import Flask, current_app

from utils.config import Config

KEY = "S2S"


def config(app: Flask | None = None) -> Config:
    """The Config the app was created with (training/src/app.create_app); `app` outside a request."""
    return (app or current_app).config[KEY]
