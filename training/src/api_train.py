"""Training endpoints (being written: see docs/api.md for the contract)."""
from flask import Blueprint

bp = Blueprint("train", __name__, url_prefix="/api")
