"""Bad input: one line naming the key or path, exit status 2, and nothing written or lost."""

import errno
import tempfile

import pytest

from ticketbench import storage
from ticketbench.cli import main
from ticketbench.errors import ArtifactError, ConfigError

FAST = ["--dataset", "synthetic", "--backbone", "test_resnet", "--epochs", "1", "--batch-size", "64",
        "--rewind-epochs", "0,1", "--no-progress"]


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("flags, named", [
    (["--backbone", "not_a_model"], "backbone"),
    (["--dataset", "cifar10", "--data-root", "{missing}"], "cifar10"),
    (["--dataset", "cifar100", "--data-root", "{empty}"], "cifar100"),
    (["--dataset", "tiny-imagenet", "--data-root", "{empty}"], "tiny-imagenet"),
    (["--dataset", "imagenet", "--data-root", "{missing}"], "imagenet"),
    (["--dataset", "imagenet"], "imagenet"),
    # A stem that needs more than 32x32: found by one forward at build, with the smallest size that runs.
    (["--backbone", "inception_v3", "--image-size", "32"], "--image-size (data.image_size) 75 or more"),
])
def test_invalid_pretrain_writes_nothing_and_the_corrected_retry_runs(capsys, tmp_path, flags, named):
    (tmp_path / "empty").mkdir()
    flags = [f.format(missing=tmp_path / "nowhere", empty=tmp_path / "empty") for f in flags]
    out = tmp_path / "run"
    err = _one_line_error(capsys, ["pretrain", *FAST, *flags, "--out", str(out)])
    assert named in err
    assert _files(out) == [], "validation must come before the first file is written"
    # The same folder takes the corrected run: no stray hparams.json blocks it.
    assert main(["pretrain", *FAST, "--out", str(out)]) == 0


def test_out_under_a_regular_file_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    err = _one_line_error(capsys, ["pretrain", *FAST, "--out", str(blocker / "run")])
    assert str(blocker / "run") in err and "writable" in err
    assert blocker.read_text() == "keep me"


def test_read_only_out_is_one_line(capsys, tmp_path, monkeypatch):
    # As root a chmod cannot refuse a write, so the read-only file system is simulated where the OS reports it.
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    err = _one_line_error(capsys, ["pretrain", *FAST, "--out", str(tmp_path / "ro")])
    assert "Read-only file system" in err and str(tmp_path / "ro") in err


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    storage.write_json(target, {"old": 1})
    with pytest.raises(ArtifactError, match="nothing was replaced"):
        with storage.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert storage.read_json(target) == {"old": 1}
    assert _files(tmp_path) == ["metrics.json"]


def test_imp_rounds_have_a_stated_maximum():
    from ticketbench.methods.imp import MAX_ROUNDS, ImpHparams

    with pytest.raises(ConfigError, match=f"imp.rounds=1000000 is not allowed; a number of rounds from 1 to {MAX_ROUNDS}"):
        ImpHparams.from_dict({"rounds": 1_000_000})
    assert ImpHparams.from_dict({"rounds": MAX_ROUNDS}).rounds == MAX_ROUNDS


def test_imp_rounds_must_leave_a_weight_per_layer():
    from ticketbench.methods.imp import ImpHparams, check_rounds, remaining_after

    sizes = {"a.weight": 1000, "b.weight": 24}
    check_rounds(ImpHparams(rounds=20, rate=0.2), sizes)  # 1024 * 0.8^20 ≈ 12 weights for 2 layers
    assert remaining_after(1024, 0.2, 20) >= 2 and remaining_after(2, 0.2, 1) == 2  # rounding stalls at 2
    with pytest.raises(ConfigError, match=r"imp.rounds=40 .* at most \d+ rounds at rate 0.2"):
        check_rounds(ImpHparams(rounds=40, rate=0.2), sizes)
    with pytest.raises(ConfigError, match="layer b.weight"):
        check_rounds(ImpHparams(rounds=20, rate=0.2, scope="layerwise"), sizes)  # 24 * 0.8^20 < 1


def test_too_many_rounds_fail_before_the_imp_folder_is_written(capsys, tmp_path):
    pre = tmp_path / "pre"
    assert main(["pretrain", *FAST, "--out", str(pre)]) == 0
    out = tmp_path / "imp"
    err = _one_line_error(capsys, ["imp", "--pretrain", str(pre), "--rounds", "90", "--no-progress", "--out", str(out)])
    assert "imp.rounds=90" in err and "at most" in err
    assert _files(out) == []
    err = _one_line_error(capsys, ["imp", "--pretrain", str(pre), "--rounds", "2", "--variant", "random_prune",
                                   "--reference", str(tmp_path / "nowhere"), "--no-progress", "--out", str(out)])
    assert "reference" in err and _files(out) == []


def test_backbones_names_a_model_that_cannot_run_at_the_size_in_one_line(capsys):
    err = _one_line_error(capsys, ["backbones", "inception_v3", "--image-size", "32"])
    assert "backbone='inception_v3'" in err and "32x32" in err and "--image-size (data.image_size) 75 or more" in err


@pytest.mark.parametrize("backbone, size, shapes", [
    # timm builds these for 224x224; they are rebuilt for the data's size: a patch that keeps 8x8 patches, a Swin
    # window that divides the first feature map, the size alone where the entrypoint fixes the patch (Mixer)
    ("deit_tiny_patch16_224", 32, {"patch_embed.proj.weight": (192, 3, 4, 4), "pos_embed": (1, 65, 192)}),
    ("deit_tiny_patch16_224", 16, {"patch_embed.proj.weight": (192, 3, 2, 2)}),
    ("swin_tiny_patch4_window7_224", 32, {"layers.0.blocks.0.attn.relative_position_bias_table": (49, 3)}),
    ("swin_tiny_patch4_window7_224", 56, {"layers.0.blocks.0.attn.relative_position_bias_table": (169, 3)}),
    ("mixer_s16_224", 32, {"stem.proj.weight": (512, 3, 16, 16)}),
    ("deit_tiny_patch16_224", 224, {"patch_embed.proj.weight": (192, 3, 16, 16)}),
])
def test_a_fixed_size_backbone_is_built_at_the_data_s_size(backbone, size, shapes):
    import torch

    from ticketbench.models import create_model

    model = create_model(backbone, num_classes=10, image_size=size)
    got = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert {n: got[n] for n in shapes} == shapes
    assert model.eval()(torch.zeros(2, 3, size, size)).shape == (2, 10)
