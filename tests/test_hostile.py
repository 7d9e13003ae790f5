"""Hostile requests found by an attack from outside: each gets a clear 4xx, never a 500 or a trip off the site."""
from __future__ import annotations

import pytest

from training.src.app import create_app
from training.src.throttle import FREE_TRIES, Throttle
from utils.config import ConfigError, load_config

TOKEN = "correct-horse-battery-staple"


@pytest.fixture
def lan_client(tmp_path):
    cfg = load_config(environ={}, overrides={"database": {"path": str(tmp_path / "db.db")},
                                             "server": {"host": "0.0.0.0", "access_token": TOKEN}})
    return create_app(cfg).test_client()


@pytest.mark.parametrize("method, path", [("put", "/api/data/{item}"), ("post", "/api/train"),
                                          ("post", "/api/model/rollback")])
def test_deeply_nested_json_is_a_400(client, seeded, method, path):
    body = "[" * 50_000 + "]" * 50_000
    response = getattr(client, method)(path.format(item=seeded["wav"]), data=body,
                                       content_type="application/json")
    assert response.status_code == 400 and "nests too deeply" in response.get_json()["message"]


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "/\r\n/x",
                                    "https://evil.example", "//evil.example", "/%09/evil.example"])
def test_login_never_leaves_the_site(lan_client, target):
    response = lan_client.post("/login", data={"token": TOKEN, "next": target})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location in ("/", target) and not location.startswith("//") and "\t" not in location


def test_login_keeps_a_path_on_the_site(lan_client):
    response = lan_client.post("/login", data={"token": TOKEN, "next": "/editor?id=4"})
    assert response.headers["Location"] == "/editor?id=4"


def test_a_long_search_is_a_400_naming_the_limit(client, seeded):
    for q in ("x" * 60_000, "%" * 25_000):
        response = client.get("/api/data", query_string={"q": q})
        assert response.status_code == 400 and "500 characters" in response.get_json()["message"]


@pytest.mark.parametrize("token", [" " * 12, "a" * 40, "abcabcabcabc", "has a space in it",
                                   # a pattern repeated, or mostly runs (issue 32: "0123456789ab" was accepted)
                                   "abcdabcdabcd", "0123456789ab", "zyxwvutsrqpo", "qwertyabcdefghij"])
def test_weak_tokens_are_refused_without_echoing_them(token):
    with pytest.raises(ConfigError, match="at least 8 of them different") as refused:
        load_config(environ={"S2S_SERVER_ACCESS_TOKEN": token})
    assert token not in str(refused.value)


def test_generated_tokens_are_accepted():
    import secrets

    for _ in range(200):
        load_config(environ={"S2S_SERVER_ACCESS_TOKEN": secrets.token_urlsafe(24)})


def test_wrong_tokens_are_slowed_down_per_address(lan_client):
    for _ in range(FREE_TRIES):
        assert lan_client.post("/login", data={"token": "wrong-token-guess", "next": "/"}).status_code == 401
    slowed = lan_client.post("/login", data={"token": TOKEN, "next": "/"})
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) >= 1  # even the right one waits
    api = lan_client.get("/api/data/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert api.status_code == 429 and api.get_json()["error"] == "too_many_attempts"
    other = lan_client.get("/api/data/stats", headers={"Authorization": f"Bearer {TOKEN}"},
                           environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.status_code == 200  # another computer is not locked out by this one


def test_the_wait_doubles_and_ends():
    now = [0.0]
    throttle = Throttle(clock=lambda: now[0])
    for _ in range(FREE_TRIES):
        throttle.failed("a")
    assert throttle.wait("a") == 1.0
    throttle.failed("a")
    assert throttle.wait("a") == 2.0
    now[0] += 2.0
    assert throttle.wait("a") == 0.0
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.wait("a") == 0.0


@pytest.mark.parametrize("text", ["a\u0085b", "a\u009bb", "evil\u202ename", "x\u2066y"])
def test_c1_controls_and_bidi_overrides_are_refused(client, seeded, text):
    response = client.put(f"/api/data/{seeded['wav']}", json={"transcript": text})
    assert response.status_code == 400 and response.get_json()["field"] == "transcript"


def test_small_contract_mismatches(client, seeded):
    assert client.post("/api/train", json={"mode": None}).status_code == 400
    assert client.post("/api/model/rollback", json={"version": ""}).status_code == 400
    stale = client.put(f"/api/data/{seeded['wav']}", json={"transcript": "x"}, headers={"If-Match": 'W/""'})
    assert stale.status_code == 400 and stale.get_json()["error"] == "invalid_header"
    for alias in ("01", "\u0661", "+1"):
        assert client.get(f"/api/data/{alias}").status_code == 404


def test_audio_errors_never_show_internal_object_names(client, conn):
    from utils import database

    item = database.insert_item(conn, "junk", b"fLaC" + b"\x00" * 64)
    for what in ("audio", "peaks"):
        response = client.get(f"/api/data/{item}/{what}")
        assert response.status_code == 422 and "object at 0x" not in response.get_json()["message"]
