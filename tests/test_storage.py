import json
import os

import pytest
import torch

from ticketbench import storage
from ticketbench.artifacts import CORE_KEYS, load_checkpoint, read_metrics, save_checkpoint, write_metrics
from ticketbench.errors import ArtifactError


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "a.json"
    storage.write_json(target, {"x": 1})
    with pytest.raises(TypeError):
        storage.write_json(target, {"x": object()})
    assert json.loads(target.read_text()) == {"x": 1}, "old file intact"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"], "no temp file left"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask, "same permissions as a plain open()"


def test_checkpoint_roundtrip_metadata_and_hash(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3), "b": torch.zeros(3, dtype=torch.int64)}
    digest = save_checkpoint(tmp_path / "c.safetensors", state, method="pretrain", sparsity=0.0, config={"lr": 0.1})
    back, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert all(torch.equal(back[k], state[k]) for k in state)
    assert meta["method"] == "pretrain" and meta["config"] == {"lr": 0.1} and meta["state_hash"] == digest
    assert storage.state_hash(back) == digest
    assert storage.read_metadata(tmp_path / "c.safetensors")["method"] == "pretrain"


@pytest.mark.parametrize("cut", ["empty", "in-length-prefix", "in-header", "in-data"])
def test_truncated_checkpoint_names_the_file(tmp_path, cut):
    p = tmp_path / "model.safetensors"
    save_checkpoint(p, {"w": torch.randn(64, 64)}, method="pretrain")
    data = p.read_bytes()
    # safetensors layout: an 8-byte little-endian header length, the JSON header, then the tensor bytes.
    header_end = 8 + int.from_bytes(data[:8], "little")
    keep = {"empty": 0, "in-length-prefix": 5, "in-header": header_end - 10, "in-data": len(data) - 10}[cut]
    p.write_bytes(data[:keep])
    with pytest.raises(ArtifactError) as e:
        load_checkpoint(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_file_and_wrong_kind(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    storage.save_tensors(tmp_path / "m.safetensors", {"x": torch.ones(2, dtype=torch.bool)}, {"kind": "mask"})
    with pytest.raises(ArtifactError, match="not a ticketbench checkpoint"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_metrics_contract(tmp_path):
    data = write_metrics(tmp_path / "metrics.json", method="imp", dataset="digits", backbone="b", seed=0,
                         sparsity=0.2, test_acc=0.9, val_acc=0.91, train_iterations=10, wall_seconds=1.0, round=1)
    assert set(CORE_KEYS) <= set(data) and data["round"] == 1
    assert read_metrics(tmp_path / "metrics.json") == data
    with pytest.raises(ValueError, match="test_acc"):
        write_metrics(tmp_path / "bad.json", method="imp", dataset="d", backbone="b", seed=0, sparsity=0.2,
                      test_acc=91.0, val_acc=0.9, train_iterations=1, wall_seconds=1.0)
    assert not (tmp_path / "bad.json").exists()
    (tmp_path / "half.json").write_text('{"method": "imp", "data')
    with pytest.raises(ArtifactError, match="half.json"):
        read_metrics(tmp_path / "half.json")
