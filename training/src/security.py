"""Who may reach the app, and what a browser may do to it.

- Bound to loopback (the default), only this computer reaches the app; the Host
  header must then name loopback too, which defeats DNS-rebinding pages.
- Bound to anything else, an access token is required (start-up refuses
  without one) and every request must carry it: `Authorization: Bearer <token>`
  or the HttpOnly, SameSite=Strict cookie that the login form sets.
- State-changing requests from another origin are refused whatever the
  binding: a page on any website could otherwise POST to 127.0.0.1:5000.
- Every response carries a Content-Security-Policy without inline script, so a
  transcript that slipped into the page as HTML still could not run.
- Referrer-Policy is "same-origin", not "no-referrer": under "no-referrer" a
  browser sends `Origin: null` with its own form posts and fetches, which the
  cross-origin guard must refuse (a sandboxed frame on any site sends the same),
  so nobody could log in from another computer. Other sites still get no referrer.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request

from training.src import current
from training.src.errors import ApiError
from training.src.throttle import Throttle
from utils.config import Config, ConfigError

COOKIE = "s2s_session"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")

bp = Blueprint("security", __name__)


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(cfg: Config) -> None:
    """Refuse to expose the app beyond this computer without an access token."""
    if not is_loopback(cfg.server.host) and not cfg.server.access_token:
        raise ConfigError(
            f"config key server.access_token: binding to {cfg.server.host} makes the app reachable from other "
            "computers, so an access token is required (set S2S_SERVER_ACCESS_TOKEN to a long random string)"
        )


def _session_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the cookie never reveals the token itself."""
    return hmac.new(token.encode(), b"s2s-training-session", hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    # Digests first so the comparison takes the same time whatever the lengths.
    return hmac.compare_digest(hashlib.sha256(a.encode()).digest(), hashlib.sha256(b.encode()).digest())


def _authorized(token: str) -> bool:
    """A right Bearer token or login cookie. A wrong Bearer token counts as a guess (see throttle.py) and is
    refused even beside a valid cookie: a cookie must not turn guessing into free tries."""
    header = request.headers.get("Authorization", "")
    if header:
        _check_throttle()
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and _same(credentials.strip(), token):  # the scheme is case-insensitive
            _throttle().succeeded(_client())
            return True
        _throttle().failed(_client())
        return False
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and _same(cookie, _session_value(token))


def _throttle() -> Throttle:
    return current_app.extensions["s2s_throttle"]


def _client() -> str:
    return request.remote_addr or "unknown"


def _check_throttle() -> None:
    wait = _throttle().wait(_client())
    if wait > 0:
        raise ApiError(429, "too_many_attempts", f"Too many wrong access tokens from this address: try again in "
                       f"{math.ceil(wait)} s.", retry_after_s=math.ceil(wait))


def _host_name(netloc: str) -> str:
    return urlsplit(f"//{netloc}").hostname or ""


def _guard():
    cfg: Config = current.config()
    if is_loopback(cfg.server.host) and not is_loopback(_host_name(request.host)):
        raise ApiError(403, "forbidden_host", "This app only answers requests addressed to this computer (localhost).")
    if request.method in UNSAFE_METHODS:
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:
            raise ApiError(403, "cross_origin", "Requests from other websites may not change anything here.")
        if not origin and request.headers.get("Sec-Fetch-Site") == "cross-site":
            raise ApiError(403, "cross_origin", "Requests from other websites may not change anything here.")
    elif request.endpoint == "export.export_zip" and request.headers.get("Sec-Fetch-Site") == "cross-site":
        # A GET, but not a safe one: the first export fixes which items are held out for good.
        raise ApiError(403, "cross_origin", "Other websites may not start an export here.")
    token = cfg.server.access_token
    if not token or request.endpoint in ("security.login", "static") or _authorized(token):
        return None
    if request.path.startswith("/api/"):
        raise ApiError(401, "unauthorized", "A valid access token is required.")
    return redirect(f"/login?next={request.full_path if request.query_string else request.path}")


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    token = current.config().server.access_token
    target = _same_site_path(request.values.get("next", "/"))
    if request.method == "GET" or not token:
        return render_template("login.html", next=target, error=None)
    wait = _throttle().wait(_client())
    if wait > 0:
        return render_template("login.html", next=target, error=f"Too many wrong tokens: wait {math.ceil(wait)} s "
                               "and try again."), 429, {"Retry-After": str(math.ceil(wait))}
    if not _same(request.form.get("token", ""), token):
        _throttle().failed(_client())
        return render_template("login.html", next=target, error="That access token is not right."), 401
    _throttle().succeeded(_client())
    response = redirect(target)
    response.set_cookie(COOKIE, _session_value(token), httponly=True, samesite="Strict", path="/")
    return response


@bp.post("/logout")
def logout():
    """Forget the login cookie on this browser (the pages show "Sign out" when a token is set)."""
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


def _same_site_path(target: str) -> str:
    """`next` if it is a path on this site, else "/".

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    "/<TAB>/evil.example" and "/\\evil.example" would leave the site; a newline in a
    Location header is refused by the server (a 500). Any of them means "/".
    """
    if any(c in target for c in "\\") or any(ord(c) < 0x20 or ord(c) == 0x7f for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def init_app(app: Flask) -> None:
    app.extensions["s2s_throttle"] = Throttle()
    # The pages offer "Sign out" only where there is something to sign out of.
    app.context_processor(lambda: {"signs_in": bool(current.config(app).server.access_token)})
    app.before_request(_guard)
    app.after_request(_headers)
    app.register_blueprint(bp)
