"""The model store: versions beside the deployed folder, the atomic swap, repair after a crash, pruning."""
from __future__ import annotations

from pathlib import Path

import pytest

from stt.models import store
from utils import runs, schema


def make_model(folder: Path, weights: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "weights").write_text(weights)
    return folder


def add(model: Path, tmp_path: Path, weights: str, accepted: bool = True) -> str:
    return store.add_version(model, make_model(tmp_path / f"candidate-{weights}", weights),
                             {"job_id": weights, "accepted": accepted, "wer_before": 0.5, "wer_after": 0.4})


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.endswith((".previous", ".incoming", ".partial")))


def test_first_version_keeps_the_original_byte_for_byte(tmp_path: Path):
    model = make_model(tmp_path / "model", "original")
    first = add(model, tmp_path, "one")
    add(model, tmp_path, "two")
    original = store.versions_dir(model) / store.ORIGINAL
    assert (original / "weights").read_text() == "original"
    listed = store.list_versions(model)
    assert [v["version"] for v in listed][-1] == store.ORIGINAL and len(listed) == 3
    # Nothing was deployed yet: the user's own model (the original) still is.
    assert store.deployed_version(model) is None and listed[-1]["deployed"]
    assert first.startswith("v1-") and listed[0]["version"].startswith("v2-")


def test_deploy_swaps_and_rollback_restores_equal_files(tmp_path: Path):
    model = make_model(tmp_path / "model", "original")
    name = add(model, tmp_path, "trained")
    store.deploy(model, name)
    assert (model / "weights").read_text() == "trained" and store.deployed_version(model) == name
    store.deploy(model, store.ORIGINAL)
    assert (model / "weights").read_text() == "original"
    assert store.deployed_version(model) == store.ORIGINAL
    assert leftovers(tmp_path) == [] and leftovers(store.versions_dir(model)) == []


def test_rejected_versions_are_listed_but_not_deployed(tmp_path: Path):
    model = make_model(tmp_path / "model", "original")
    name = add(model, tmp_path, "worse", accepted=False)
    entry = next(v for v in store.list_versions(model) if v["version"] == name)
    assert entry["accepted"] is False and entry["deployed"] is False
    assert (model / "weights").read_text() == "original"


def test_versions_sort_by_number_not_text(tmp_path: Path):
    model = make_model(tmp_path / "model", "original")
    names = [add(model, tmp_path, str(i)) for i in range(11)]
    listed = [v["version"] for v in store.list_versions(model)]
    assert listed[0] == names[-1] and listed[0].startswith("v11-") and listed[1].startswith("v10-")


def test_prune_keeps_original_deployed_and_newest(tmp_path: Path):
    model = make_model(tmp_path / "model", "original")
    names = [add(model, tmp_path, str(i)) for i in range(5)]
    store.deploy(model, names[0])  # an old one deployed (after a rollback) survives pruning
    store.prune(model, keep=2)
    kept = [v["version"] for v in store.list_versions(model)]
    assert kept == [names[4], names[3], names[0], store.ORIGINAL]


def test_lineage_survives_pruning(tmp_path: Path):
    model = make_model(tmp_path / "model", "original")
    first = add(model, tmp_path, "one")
    store.deploy(model, first)
    second = add(model, tmp_path, "two")
    store.deploy(model, second)
    third = add(model, tmp_path, "three", accepted=False)  # trained from `second`, never deployed
    store.prune(model, keep=1)
    assert not (store.versions_dir(model) / first).exists()
    assert store.lineage(model) == [store.ORIGINAL, first, second]
    assert store.lineage(model, third) == [store.ORIGINAL, first, second, third]
    assert store.lineage(model, store.ORIGINAL) == [store.ORIGINAL]


def test_deploy_of_an_unknown_version_changes_nothing(tmp_path: Path):
    model = make_model(tmp_path / "model", "original")
    with pytest.raises(store.StoreError, match="no kept model version"):
        store.deploy(model, "v7-missing")
    assert (model / "weights").read_text() == "original"


def test_store_repairs_an_interrupted_swap(tmp_path: Path):
    model = tmp_path / "model"
    make_model(tmp_path / "model.previous", "the deployed model")  # crashed between the two renames
    make_model(tmp_path / "model.incoming", "half copied")
    make_model(tmp_path / "model.versions" / "v3-x.partial", "half copied version")
    store.repair(model)
    assert (model / "weights").read_text() == "the deployed model"
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "model.versions") == []


def test_repair_after_a_completed_swap_keeps_the_new_model(tmp_path: Path):
    model = make_model(tmp_path / "model", "new")
    make_model(tmp_path / "model.previous", "old")  # crashed before the backup was removed
    store.repair(model)
    assert (model / "weights").read_text() == "new" and leftovers(tmp_path) == []


def test_a_failed_swap_puts_the_deployed_model_back(tmp_path: Path, monkeypatch):
    model = make_model(tmp_path / "model", "original")
    name = add(model, tmp_path, "trained")
    real_rename = store._rename

    def failing(src: Path, dst: Path) -> None:
        if src.name.endswith(".incoming"):
            raise store.StoreError("could not rename: it is in use")
        real_rename(src, dst)

    monkeypatch.setattr(store, "_rename", failing)
    with pytest.raises(store.StoreError):
        store.deploy(model, name)
    assert (model / "weights").read_text() == "original" and leftovers(tmp_path) == []


def test_rename_retries_while_the_folder_is_in_use(tmp_path: Path, monkeypatch):
    """Windows refuses to rename a folder another program has open; it usually lets go within moments."""
    src, dst = make_model(tmp_path / "a", "x"), tmp_path / "b"
    real_rename, refusals = Path.rename, []

    def busy(self: Path, target: Path):
        if len(refusals) < 3:
            refusals.append(self)
            raise PermissionError(13, "in use")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", busy)
    monkeypatch.setattr(store.time, "sleep", lambda s: None)
    store._rename(src, dst)
    assert dst.is_dir() and len(refusals) == 3

    monkeypatch.setattr(Path, "rename", lambda self, target: (_ for _ in ()).throw(PermissionError(13, "in use")))
    with pytest.raises(store.StoreError, match="in use"):
        store._rename(dst, src)


def test_model_endpoint_without_a_model(client, cfg):
    body = client.get("/api/model").get_json()
    assert body == {"path": str(cfg.model.path), "name": None, "format": None, "present": False, "version": None,
                    "versions": [], "deployed_file": str(cfg.model.path) + ".deployed.json", "deployed": None,
                    "assistant_told": None}


def test_rollback_requests_are_checked(client, cfg, conn):
    for bad in ({}, {"version": ""}, {"version": 3}):
        response = client.post("/api/model/rollback", json=bad)
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_field"
    assert client.post("/api/model/rollback", json={"version": "v1-none"}).status_code == 404
    make_model(cfg.model.path, "original")
    schema.migrate(conn)
    runs.create(conn, "decoder", 5, 3)  # a run in progress (fresh heartbeat)
    response = client.post("/api/model/rollback", json={"version": store.ORIGINAL})
    assert response.status_code == 409 and response.get_json()["error"] == "job_running"


@pytest.mark.parametrize("check", ["health", "model", "train", "transcribe"])
def test_a_swap_a_dead_worker_left_half_done_is_repaired_by_whatever_looks_for_the_model(client, cfg, conn, check):
    """The server was running all along: no restart is needed to get the model folder back."""
    from tests import tiny_whisper
    from utils import database

    tiny_whisper.build(cfg.model.path)
    item = database.insert_item(conn, "hello", b"")
    cfg.model.path.rename(cfg.model.path.with_name(cfg.model.path.name + ".previous"))  # killed mid-swap
    answer = {"health": lambda: client.get("/api/health"), "model": lambda: client.get("/api/model"),
              "train": lambda: client.post("/api/train"),
              "transcribe": lambda: client.post(f"/api/data/{item}/transcribe")}[check]()
    assert cfg.model.path.is_dir() and not store.swap_interrupted(cfg.model.path)
    if check in ("health", "model"):
        assert answer.get_json()["present"] if check == "model" else answer.get_json()["model"]["present"]
    else:
        assert "model" not in answer.get_json().get("error", "")  # refused for other reasons, never "no model"
