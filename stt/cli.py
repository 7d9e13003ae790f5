"""The terminal side of training: `main.py train`, `evaluate` and `model list|info|download|rollback|import`.

`train` runs the very same job as the web app's Train button (stt.runs.worker.run),
in the foreground, recorded in the same run history, with a progress bar.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from stt.finetune import timings
from stt.models import download, model_info, store
from stt.models.model_format import ModelFormatError, detect_format
from stt.runs import jobs, model_import, worker
from stt.runs.clips import load_samples
from utils.config import Config
from utils.formatting import percent


def train_foreground(cfg: Config) -> int:
    """`main.py train`: one run in this process, with a progress bar; 0 when it finished (deployed or not)."""
    try:
        started = jobs.start_record(cfg)
    except jobs.JobError as exc:
        print(f"train: {exc.message}", file=sys.stderr)
        return 1
    return _run_with_bar(cfg, started)


def model_import_command(cfg: Config, folder: str) -> int:
    """`main.py model import DIR`: a model trained elsewhere, kept as a version and deployed by the training rule."""
    try:
        started = model_import.start_record(cfg, Path(folder))
    except jobs.JobError as exc:
        print(f"model import: {exc.message}", file=sys.stderr)
        return 1
    return _run_with_bar(cfg, started, Path(folder))


def _run_with_bar(cfg: Config, started: dict[str, Any], imported: Path | None = None) -> int:
    from tqdm import tqdm  # transformers' own dependency

    print(started["message"])
    shown: dict[str, Any] = {"phase": None, "bar": None}

    def show(p: Any) -> None:
        """One bar per phase (training, validating, evaluating, ...), with its rate, time left and loss."""
        if p.phase != shown["phase"]:
            if shown["bar"] is not None:
                shown["bar"].close()
            shown.update(phase=p.phase, bar=tqdm(total=p.total, desc=f"{p.phase:<10}", file=sys.stdout,
                                                 dynamic_ncols=True, leave=True))
        bar = shown["bar"]
        bar.total = p.total
        bar.n = p.step
        if p.loss is not None:
            bar.set_postfix(loss=f"{p.loss:.3f}", refresh=False)
        bar.refresh()

    finished = worker.run(started["job_id"], cfg, on_progress=show, imported=imported)
    if shown["bar"] is not None:
        shown["bar"].close()
    print(finished["message"] if finished else "the run left no record")
    phase_seconds = (finished or {}).get("result", {}).get("phase_seconds")
    if phase_seconds:
        print(f"time: {timings.describe(phase_seconds)}")
    return 0 if finished and finished["state"] == "done" else 1


def evaluate_current(cfg: Config) -> int:
    """The deployed model on the held-out items, heard the way the assistant decodes, as a run measures it:
    WER on the spoken clips, and apart from it the share of clips without speech it writes words on."""
    try:
        detect_format(cfg.model.path)
    except ModelFormatError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    from stt.assistant import evaluation
    from stt.assistant.decoder import DecodeError
    from stt.runs.measuring import profile_for

    worker.quiet_libraries()  # one line of result, not a library warning per batch
    conn = jobs.connect(cfg)
    samples = load_samples(conn, cfg, jobs.plan(conn, cfg).heldout)
    conn.close()
    if not samples:
        print("evaluate: no held-out items yet: the first Train click holds some out (review a few items, "
              "then train)", file=sys.stderr)
        return 1
    profile = profile_for(cfg)
    sets = {"spoken": [s for s in samples if s.text], "no_speech": [s for s in samples if not s.text]}
    try:
        scores = evaluation.measure_folder(cfg.model.path, profile, sets)
    except DecodeError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    version = store.deployed_version(cfg.model.path) or "original"
    parts = [f"WER {percent(evaluation.wer(scores['spoken']))} on {len(sets['spoken'])} items"] \
        if sets["spoken"] else []
    if sets["no_speech"]:
        parts.append(f"words on {percent(evaluation.with_words(scores['no_speech']), 0)} of "
                     f"{len(sets['no_speech'])} clips without speech")
    print(f"held-out {'; '.join(parts)}, {cfg.model.path} ({version}), heard as {profile.describe()}")
    return 0


def model_list(cfg: Config) -> int:
    """`main.py model list`: the deployed model and every kept version with its WER."""
    try:
        fmt = detect_format(cfg.model.path)
    except ModelFormatError as exc:
        print(f"model list: no model at {cfg.model.path} ({exc}). Put one there with 'python main.py model "
              "download' or 'python main.py model import DIR', or run 'python main.py demo' for tiny.en.",
              file=sys.stderr)
        _print_versions(store.list_versions(cfg.model.path))
        return 1
    name = model_info.name_of(cfg.model.path) or "no model"
    print(f"deployed: {name} at {cfg.model.path}  format: {fmt}  "
          f"version: {store.deployed_version(cfg.model.path) or 'original'}")
    _print_versions(store.list_versions(cfg.model.path))
    return 0


def _print_versions(versions: list[dict[str, Any]]) -> None:
    for v in versions:
        wer = f"WER {percent(v['wer_before'])} -> {percent(v['wer_after'])}" if v.get("wer_after") is not None else ""
        flag = "deployed" if v["deployed"] else ("" if v["accepted"] else "rejected")
        print(f"  {v['version']:<28} {v['created_at'] or '':<26} {wer:<24} {flag}")


def model_rollback(cfg: Config, version: str) -> int:
    """`main.py model rollback VERSION`: the same rollback as the web app's, item flags included."""
    try:
        done = jobs.rollback(cfg, version)
    except jobs.JobError as exc:
        print(f"rollback: {exc.message}", file=sys.stderr)
        return 1
    print(f"{done['message']} ({cfg.model.path})")
    return 0


def model_info_command(cfg: Config) -> int:
    """`main.py model info`: format, precision, size, parameters and version history of the model folder."""
    try:
        info = model_info.describe(cfg.model.path)
    except ModelFormatError as exc:
        print(f"model info: {exc}", file=sys.stderr)
        return 1
    parameters = f"{info['parameters'] / 1e6:.1f} M" if info["parameters"] else "unknown"
    print(f"model:       {info['name']}\n"
          f"path:        {info['path']}\n"
          f"format:      {info['format']} ({info['precision']})\n"
          f"size:        {info['size_bytes'] / 2**20:.1f} MiB\n"
          f"parameters:  {parameters}\n"
          f"layers:      {info['encoder_layers']} encoder, {info['decoder_layers']} decoder, width {info['d_model']}\n"
          f"version:     {info['version']}")
    if info["versions"]:
        print("history:")
        _print_versions(info["versions"])
    return 0


def model_download(cfg: Config, name: str) -> int:
    """`main.py model download [NAME]`: fetch a model from the Hugging Face hub into the model folder."""
    print(f"downloading {name} to {cfg.model.path} ...")
    try:
        fmt = download.download(name, cfg.model.path)
    except download.DownloadError as exc:
        print(f"model download: {exc}", file=sys.stderr)
        return 1
    print(f"installed {name} ({fmt}) at {cfg.model.path}")
    return 0
