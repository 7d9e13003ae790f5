"""S2S Training: review your assistant's transcripts and fine-tune its Whisper model.

Commands (all take --config, --db, --model and --create):
  python main.py [serve]             serve the web app with waitress (default 127.0.0.1:5000)
  python main.py serve --demo        fill an empty database with demo clips first, then serve
  python main.py demo                fill an empty database with demo clips (espeak-ng speech)
  python main.py train               fine-tune on reviewed items in the foreground, with progress
  python main.py evaluate            word error rate of the deployed model on held-out items
  python main.py export DIR          reviewed clips as a Hugging Face audiofolder dataset
  python main.py import PATH         clips from a folder, an audiofolder dataset or another database
  python main.py model list          deployed model and kept versions
  python main.py model info          format, precision, size, parameters and history of the model
  python main.py model download [N]  fetch model N (default distil-whisper/distil-small.en) from the hub
  python main.py model rollback V    make kept version V the deployed model again
  python main.py model import DIR    add a model trained elsewhere; deployed by the same rule as training
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from stt.models.download import DEFAULT_MODEL
from utils.config import Config, ConfigError, embedded_database, load_config
from utils.database import DatabaseUnavailable


class CannotListen(OSError):
    """The address or port cannot be bound; the message says what to do."""


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS so a flag given before the command is not reset by the command's own copy of it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--config", help="TOML config file (default: configs/training.toml)")
    common.add_argument("--db", help="SQLite database file (overrides [database].path)")
    common.add_argument("--model", help="Whisper model folder (overrides [model].path)")
    common.add_argument("--create", action="store_true",
                        help="create the database if it does not exist (only data/database.db is created unasked)")

    parser = argparse.ArgumentParser(
        prog="main.py", description=__doc__, parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(group: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
        # The same sentence in the list of commands and atop the command's own --help page.
        return group.add_parser(name, parents=[common], help=text, description=text[0].upper() + text[1:] + ".")

    serve = command(commands, "serve", "serve the web app with waitress (the default command)")
    for p in (parser, serve):  # SUPPRESS, as for the common flags: `--port 8080 serve` must keep the port
        p.add_argument("--host", default=argparse.SUPPRESS,
                       help="address to bind (default from [server].host: 127.0.0.1)")
        p.add_argument("--port", type=int, default=argparse.SUPPRESS,
                       help="port to bind (default from [server].port: 5000)")
        p.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                       help="fill an empty database with demo clips and use the demo model before serving")
    demo = command(commands, "demo", "fill an empty database with demo speech clips and install the demo model")
    demo.add_argument("--force", action="store_true", help="add the demo clips even if the database has items")
    command(commands, "train", "fine-tune the model on reviewed items in the foreground, with progress")
    command(commands, "evaluate", "report the deployed model's word error rate on the held-out items")
    export = command(commands, "export", "write the reviewed clips as a Hugging Face audiofolder dataset")
    export.add_argument("dir", help="a new (or empty) folder to write the dataset to")
    export.add_argument("--untrained", action="store_true", help="only items the deployed model has not learned")
    export.add_argument("--wav16k", action="store_true",
                        help="write audio as 16 kHz mono WAV (default: as stored, raw PCM as WAV)")
    importing = command(commands, "import", "add clips from a folder of audio + .txt pairs, an audiofolder "
                                            "dataset, or another database with the seed's table")
    importing.add_argument("path", help="the folder or database file to import")
    reviewed = importing.add_mutually_exclusive_group()
    reviewed.add_argument("--reviewed", action="store_true", default=None,
                          help="mark imported items with a transcript reviewed (their text was checked elsewhere)")
    reviewed.add_argument("--unreviewed", dest="reviewed", action="store_false",
                          help="leave every imported item for review (default: unreviewed, except that rows "
                               "from another database keep their own flag)")
    model = command(commands, "model", "inspect, download or roll back the model")
    model_cmds = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    command(model_cmds, "list", "show the deployed model and the kept versions")
    command(model_cmds, "info", "show the model's name, format, precision, size, parameters and history")
    fetch = command(model_cmds, "download", "fetch a Whisper model from the Hugging Face hub into the model folder")
    fetch.add_argument("name", nargs="?", default=DEFAULT_MODEL,
                       help="hub model id, Hugging Face or faster-whisper format (default: %(default)s)")
    rollback = command(model_cmds, "rollback", "deploy a kept version again (see 'model list')")
    rollback.add_argument("version", help="the version to deploy")
    bring = command(model_cmds, "import", "add a Whisper model trained elsewhere as a new version, deployed only if "
                                          "it measures no worse than the deployed one, as after training")
    bring.add_argument("dir", help="the model folder (Hugging Face or CTranslate2 format); it is copied, not moved")
    return parser


def _config(args: argparse.Namespace) -> Config:
    overrides = {
        "database": {"path": getattr(args, "db", None)},
        "model": {"path": getattr(args, "model", None)},
        "server": {"host": getattr(args, "host", None), "port": getattr(args, "port", None)},
    }
    return load_config(getattr(args, "config", None), overrides={k: {kk: vv for kk, vv in v.items() if vv is not None}
                                               for k, v in overrides.items()})


def _check_database(cfg: Config, create: bool) -> None:
    """A mistyped --db must stop here, not quietly become a new empty database that shows nothing to review."""
    path = cfg.database.path
    if create or path.exists() or path == embedded_database(cfg):
        return
    raise DatabaseUnavailable(f"there is no database at {path}: check the path (--db or [database].path), "
                              "or add --create to make a new one there")


def _use_demo_model(cfg: Config) -> None:
    """While the configured model folder is empty, point this session at Whisper tiny.en, installed beside it
    in a folder named for it; a model of the user's own is never replaced."""
    from utils import demo

    configured = cfg.model.path
    if demo.holds_model(configured):
        return
    target = demo.model_folder(configured)
    if demo.install_demo_model(target):
        print(f"demo: installed Whisper tiny.en, the demo model, at {target}")
    cfg.model.path = target
    print(f"demo: training Whisper tiny.en at {target} ({configured} holds no model; for real use put "
          "distil-small.en there with 'python main.py model download'). Other commands take --model to use it.")


def _keep_demo_model(cfg: Config) -> None:
    """Once the demo installed its model, every later command uses it while the configured folder holds none."""
    from utils import demo

    in_use = demo.model_in_use(cfg.model.path)
    if in_use != cfg.model.path:
        print(f"demo: using Whisper tiny.en, the demo model, at {in_use} ({cfg.model.path} holds no model; "
              "put yours there with 'python main.py model download' or 'model import')")
        cfg.model.path = in_use


def _demo(cfg: Config, force: bool = False) -> int:
    from utils import database, demo

    database.init_db(cfg.database.path, cfg.database.busy_timeout_ms)
    conn = database.connect(cfg.database.path, cfg.database.busy_timeout_ms)
    try:
        count = demo.fill_demo(conn, force=force)
        print(f"demo: added {count} speech clips to {cfg.database.path}")
        _use_demo_model(cfg)
    except demo.DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


def _listen(cfg: Config, app: Any) -> Any:
    from waitress import create_server

    try:
        return create_server(app, host=cfg.server.host, port=cfg.server.port, threads=8)
    except OSError as exc:  # port taken, address not on this computer, name that does not resolve
        raise CannotListen(f"cannot listen on {cfg.server.host}:{cfg.server.port}: {exc.strerror or exc}. "
                           "Is S2S Training already running? Choose another port with --port.") from None


def _serve(cfg: Config, with_demo: bool) -> int:
    from training.src.app import create_app
    from utils import database, demo

    if with_demo:
        _listen(cfg, lambda environ, start_response: []).close()  # a port in use says so before the demo's set-up
        database.init_db(cfg.database.path, cfg.database.busy_timeout_ms)
        conn = database.connect(cfg.database.path)
        empty = database.count_items(conn) == 0
        conn.close()
        if empty and _demo(cfg) != 0:
            return 1
        try:
            _use_demo_model(cfg)  # also on later starts, once the demo clips are in
        except demo.DemoError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
    server = _listen(cfg, create_app(cfg))
    print(f"S2S Training on http://{cfg.server.host}:{cfg.server.port}/  (database: {cfg.database.path}; "
          f"model: {cfg.model.path})")
    if cfg.server.host in ("0.0.0.0", "::"):
        # Every address is bound: name the ones another computer on the network can open.
        for address in _lan_addresses():
            print(f"  on this network: http://{address}:{cfg.server.port}/")
    from stt.runs import warm

    # While the user reviews, the built-in speech's encoder states are computed for the first Train click.
    warm.start(cfg)
    try:
        server.run()
    finally:
        warm.stop()
    return 0


def _lan_addresses() -> list[str]:
    """This computer's IPv4 addresses other than loopback: those its name resolves to, and the one it
    would send from (a UDP "connect" sends no packet, so this works offline too)."""
    import socket

    found = set()
    try:
        found |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127.") and a != "0.0.0.0")


def _transfer(cfg: Config, args: argparse.Namespace) -> int:
    """`export` and `import`: the user's data out of and into the shared table."""
    from pathlib import Path

    from utils import database, disk, export, importer
    from utils.import_sources import SourceError

    database.init_db(cfg.database.path, cfg.database.busy_timeout_ms)
    conn = database.connect(cfg.database.path, cfg.database.busy_timeout_ms)
    try:
        if args.command == "export":
            report = export.export_to_folder(conn, Path(args.dir), cfg, args.untrained, args.wav16k)
            print(f"export: wrote {report.summary()} to {args.dir}")
            for item_id, why in report.skipped:
                print(f"  item {item_id}: {why}")
            return 0
        result = importer.import_clips(conn, Path(args.path), cfg.audio, args.reviewed, cfg.database.keep_free_mb)
        print(f"import: {result.summary()}")
        for source, why in result.problems:
            print(f"  {source}: {why}")
        return 0 if result.added or not result.problems else 1
    except (export.ExportError, SourceError) as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 1
    except disk.DiskShort as exc:  # import: the batches added before it stay, whole
        print(f"{args.command}: stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # faster-whisper logs a line per transcribed clip at INFO: the re-scoring of a backlog would bury the rest.
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    try:
        return _run(args, _config(args))
    except (ConfigError, DatabaseUnavailable, CannotListen) as exc:  # every start-up problem: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, cfg: Config) -> int:
    command = args.command or "serve"
    if getattr(args, "model_command", None) not in ("download", "import"):  # those fill the configured folder
        _keep_demo_model(cfg)
    # `model rollback` and `model import` write the item flags; `model list` shows what the database's runs made.
    if command in ("serve", "demo", "train", "evaluate", "export", "import") or \
            getattr(args, "model_command", None) in ("list", "rollback", "import"):
        _check_database(cfg, getattr(args, "create", False))
    if command == "serve":
        return _serve(cfg, getattr(args, "demo", False))
    if command == "demo":
        return _demo(cfg, args.force)
    if command in ("export", "import"):
        return _transfer(cfg, args)
    from stt import cli  # imported late: it pulls in the training stack

    if command == "train":
        return cli.train_foreground(cfg)
    if command == "evaluate":
        return cli.evaluate_current(cfg)
    if args.model_command == "list":
        return cli.model_list(cfg)
    if args.model_command == "info":
        return cli.model_info_command(cfg)
    if args.model_command == "download":
        return cli.model_download(cfg, args.name)
    if args.model_command == "import":
        return cli.model_import_command(cfg, args.dir)
    return cli.model_rollback(cfg, args.version)


if __name__ == "__main__":
    sys.exit(main())
