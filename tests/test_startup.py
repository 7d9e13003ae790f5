"""Start-up mistakes a new user makes: each stops with one line naming the problem, and nothing is created."""
from __future__ import annotations

import socket

import pytest

from main import main
from tests.conftest import free_port


def test_a_mistyped_database_path_stops_instead_of_creating_one(tmp_path, capsys):
    typo = tmp_path / "Dev" / "databse" / "database.db"
    for command in (["serve"], ["train"], ["evaluate"], ["demo"], ["model", "list"]):
        assert main([*command, "--db", str(typo), "--model", str(tmp_path / "model")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and str(typo) in err and "--create" in err
    assert not (tmp_path / "Dev").exists()


def test_a_port_in_use_is_one_line(tmp_path, capsys):
    port, db = free_port(), tmp_path / "new" / "db.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        code = main(["--port", str(port), "--create", "--db", str(db),
                     "--model", str(tmp_path / "model")])
    out, err = capsys.readouterr()
    assert code == 2 and "S2S Training on" not in out
    assert err.strip().count("\n") == 0 and f"127.0.0.1:{port}" in err and "--port" in err
    assert db.is_file()  # --create made the database the mistyped-path check would otherwise refuse


def test_a_port_in_use_stops_the_demo_before_its_set_up(tmp_path, capsys, monkeypatch):
    from utils import demo

    monkeypatch.setattr(demo, "fill_demo", lambda *a, **k: pytest.fail("the demo was set up on a taken port"))
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        code = main(["--port", str(port), "--create", "--db", str(tmp_path / "db.db"),
                     "--model", str(tmp_path / "model"), "--demo"])
    assert code == 2 and f"127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["train"], ["evaluate"], ["model", "list"],
                                     ["model", "info"], ["model", "download"], ["model", "rollback"]])
def test_every_command_says_what_it_does(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    description = capsys.readouterr().out.split("\n\n")[1]
    assert description[0].isupper() and description.rstrip().endswith(".") and len(description.split()) >= 5


def test_serving_on_every_address_names_the_ones_another_computer_opens(tmp_path, capsys, monkeypatch):
    class Server:
        def run(self) -> None:
            return None

    monkeypatch.setattr("waitress.create_server", lambda app, **options: Server())
    monkeypatch.setattr("main._lan_addresses", lambda: ["192.0.2.7"])
    monkeypatch.setenv("S2S_SERVER_ACCESS_TOKEN", "a-long-enough-token-for-the-lan")
    code = main(["--host", "0.0.0.0", "--port", "5099", "--create", "--db", str(tmp_path / "db.db"),
                 "--model", str(tmp_path / "model")])
    out = capsys.readouterr().out
    assert code == 0 and "on this network: http://192.0.2.7:5099/" in out and f"model: {tmp_path / 'model'}" in out


def test_lan_addresses_leave_out_loopback():
    from main import _lan_addresses

    assert all(not a.startswith("127.") and a.count(".") == 3 for a in _lan_addresses())
