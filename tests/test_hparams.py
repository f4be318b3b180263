import argparse
from dataclasses import dataclass

import pytest

from ticketbench import storage
from ticketbench.errors import ConfigError
from ticketbench.hparams import DataHparams, TrainHparams, hp
from ticketbench.stage import claim_out_dir


def test_defaults_config_then_flags():
    parser = argparse.ArgumentParser()
    TrainHparams.add_args(parser)
    args = parser.parse_args(["--lr", "0.3"])
    hp = TrainHparams.from_sources({"train": {"lr": 0.2, "epochs": 7}}, args)
    assert hp.lr == 0.3 and hp.epochs == 7 and hp.batch_size == TrainHparams().batch_size


@pytest.mark.parametrize("block,key", [({"epochs": 0}, "train.epochs"), ({"lr": -1.0}, "train.lr"),
                                       ({"schedule": "linear"}, "train.schedule"), ({"epoch": 3}, "train.epoch"),
                                       ({"epochs": "ten"}, "train.epochs"),
                                       ({"rewind_epochs": "3,x"}, "train.rewind_epochs"),
                                       ({"rewind_epochs": "99"}, "train.rewind_epochs")])
def test_bad_values_name_the_key(block, key):
    with pytest.raises(ConfigError) as e:
        TrainHparams.from_dict(block)
    assert str(e.value).startswith(key + "=")


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="data.dataset='mnist'.*digits"):
        DataHparams.from_dict({"dataset": "mnist"})


def _settings(**train):
    return {"seed": 0, "threads": 1, "data": DataHparams(dataset="synthetic").to_dict(),
            "train": TrainHparams(**train).to_dict()}


def test_run_id_names_the_settings_and_guards_the_folder(tmp_path):
    """The run id production writes (``claim_out_dir``): a hash of the resolved settings, not of key order."""
    base = _settings()
    first = claim_out_dir(str(tmp_path / "a"), base, overwrite=False)
    reordered = {k: base[k] for k in reversed(list(base))}
    assert claim_out_dir(str(tmp_path / "b"), reordered, overwrite=False) == first
    assert claim_out_dir(str(tmp_path / "a"), base, overwrite=False) == first, "a re-run of the same recipe is let in"
    assert storage.read_json(tmp_path / "a" / "hparams.json") == {"run_id": first, "settings": base}
    changed = [_settings(lr=0.2), _settings(nesterov=True), {**base, "seed": 1}, {**base, "threads": 2},
               {**base, "data": DataHparams(dataset="digits").to_dict()}]
    ids = {claim_out_dir(str(tmp_path / f"c{i}"), s, overwrite=False) for i, s in enumerate(changed)}
    assert len(ids) == len(changed) and first not in ids, "every changed setting names another run"
    with pytest.raises(ConfigError) as e:
        claim_out_dir(str(tmp_path / "a"), _settings(lr=0.2), overwrite=False)
    assert str(e.value).startswith("out=") and "differs in train" in str(e.value) and "--overwrite" in str(e.value)
    assert storage.read_json(tmp_path / "a" / "hparams.json")["run_id"] == first, "a refused claim writes nothing"
    replaced = claim_out_dir(str(tmp_path / "a"), _settings(lr=0.2), overwrite=True)
    assert replaced != first and storage.read_json(tmp_path / "a" / "hparams.json")["run_id"] == replaced


@dataclass(frozen=True)
class _TrainWithNewKnob(TrainHparams):
    """TrainHparams as a later version might have it: one more field whose default changes nothing."""

    new_knob: float = hp(0.0, "a setting added later")


def test_a_new_default_field_keeps_existing_runs(tmp_path, monkeypatch):
    import ticketbench.pretrain as pretrain_mod
    from ticketbench.cli import main

    flags = ["pretrain", "--dataset", "synthetic", "--backbone", "test_resnet", "--epochs", "1", "--batch-size", "64",
             "--no-progress", "--out", str(tmp_path)]
    assert main(flags) == 0
    monkeypatch.setattr(pretrain_mod, "TrainHparams", _TrainWithNewKnob)
    assert main(flags) == 0, "the same recipe, re-run after an upgrade that added a field"
