"""Access: loopback by default, a token for anything else, no cross-site writes, safe headers."""
from __future__ import annotations

import pytest

from training.src.app import create_app
from utils.config import ConfigError, load_config

TOKEN = "correct-horse-battery-staple"


@pytest.fixture
def lan_app(tmp_path):
    cfg = load_config(environ={}, overrides={
        "database": {"path": str(tmp_path / "db.db")},
        "server": {"host": "0.0.0.0", "access_token": TOKEN},
    })
    return create_app(cfg)


def test_binding_beyond_loopback_needs_a_token(tmp_path):
    cfg = load_config(environ={}, overrides={"database": {"path": str(tmp_path / "db.db")},
                                             "server": {"host": "0.0.0.0"}})
    with pytest.raises(ConfigError, match="access_token"):
        create_app(cfg)


def test_short_token_is_refused_without_echoing_it():
    with pytest.raises(ConfigError, match="access_token") as refused:
        load_config(environ={"S2S_SERVER_ACCESS_TOKEN": "hunter2-pw"})
    assert "hunter2" not in str(refused.value) and "10 characters" in str(refused.value)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                                     {"Authorization": TOKEN}])
def test_api_without_the_right_token_is_401(lan_app, headers):
    response = lan_app.test_client().get("/api/data/stats", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized", "message": "A valid access token is required."}


def test_api_with_bearer_token(lan_app):
    response = lan_app.test_client().get("/api/data/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


def test_pages_redirect_to_login_and_the_form_sets_a_strict_cookie(lan_app):
    client = lan_app.test_client()
    response = client.get("/editor?id=3")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/editor")
    assert client.post("/login", data={"token": "nope", "next": "/editor"}).status_code == 401
    response = client.post("/login", data={"token": TOKEN, "next": "/editor"})
    assert response.status_code == 302 and response.headers["Location"] == "/editor"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    assert client.get("/api/data/stats").status_code == 200


def test_login_never_redirects_off_site(lan_app):
    response = lan_app.test_client().post("/login", data={"token": TOKEN, "next": "//evil.example/x"})
    assert response.headers["Location"] == "/"


def test_cross_site_writes_are_refused(client, seeded):
    item = seeded["wav"]
    response = client.put(f"/api/data/{item}", json={"transcript": "pwned"}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and response.get_json()["error"] == "cross_origin"
    response = client.post("/api/train", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert client.get(f"/api/data/{item}?audio=0").get_json()["transcript"] != "pwned"
    same = client.put(f"/api/data/{item}", json={"transcript": "ok"}, headers={"Origin": "http://localhost"})
    assert same.status_code == 200


def test_dns_rebinding_host_is_refused_on_loopback(client):
    response = client.get("/api/data/stats", headers={"Host": "attacker.example"})
    assert response.status_code == 403


def test_security_headers(client):
    response = client.get("/api/health")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_no_debug_traceback_on_unexpected_error(app, client):
    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = client.get("/api/boom")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert b"secret internals" not in response.data and b"Traceback" not in response.data


def test_the_bearer_scheme_is_case_insensitive_and_a_wrong_one_beside_a_cookie_is_a_guess(lan_app):
    client = lan_app.test_client()
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert client.get("/api/data/stats", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200
    assert client.post("/login", data={"token": TOKEN, "next": "/"}).status_code == 302
    assert client.get("/api/data/stats").status_code == 200  # the cookie alone
    throttle = lan_app.extensions["s2s_throttle"]
    wrong = client.get("/api/data/stats", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401 and throttle._failures["127.0.0.1"][0] == 1  # counted as a guess


def test_a_cross_site_export_is_refused(client, seeded):
    """Issue: a GET from another site started an export, which fixes the held-out set for good."""
    refused = client.get("/api/export", headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403 and refused.get_json()["error"] == "cross_origin"
    assert client.get("/api/export", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_sign_out_is_offered_only_with_a_token(lan_app, client):
    assert "Sign out" not in client.get("/").get_data(as_text=True)  # loopback without a token: nothing to leave
    lan = lan_app.test_client()
    lan.post("/login", data={"token": TOKEN, "next": "/"})
    assert "Sign out" in lan.get("/").get_data(as_text=True)
    left = lan.post("/logout")
    assert left.status_code == 302 and left.headers["Location"] == "/login"
    assert lan.get("/api/data/stats").status_code == 401
