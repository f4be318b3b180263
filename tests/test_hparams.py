import argparse

import pytest

from ticketbench.errors import ConfigError
from ticketbench.hparams import DataHparams, TrainHparams


def test_defaults_config_then_flags():
    parser = argparse.ArgumentParser()
    TrainHparams.add_args(parser)
    args = parser.parse_args(["--lr", "0.3"])
    hp = TrainHparams.from_sources({"train": {"lr": 0.2, "epochs": 7}}, args)
    assert hp.lr == 0.3 and hp.epochs == 7 and hp.batch_size == TrainHparams().batch_size


@pytest.mark.parametrize("block,key", [({"epochs": 0}, "train.epochs"), ({"lr": -1.0}, "train.lr"),
                                       ({"schedule": "linear"}, "train.schedule"), ({"epoch": 3}, "train.epoch"),
                                       ({"epochs": "ten"}, "train.epochs"), ({"rewind_epochs": "3,x"}, "train.rewind_epochs"),
                                       ({"rewind_epochs": "99"}, "train.rewind_epochs")])
def test_bad_values_name_the_key(block, key):
    with pytest.raises(ConfigError) as e:
        TrainHparams.from_dict(block)
    assert str(e.value).startswith(key + "=")


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="data.dataset='mnist'.*digits"):
        DataHparams.from_dict({"dataset": "mnist"})


def test_run_id_pins():
    # These literals must never change: they name existing runs.
    assert TrainHparams().run_id() == TrainHparams.from_dict({}).run_id()
    assert TrainHparams(lr=0.2).run_id() != TrainHparams().run_id()
    assert TrainHparams().run_id() == "de42c2e8633d"
    assert TrainHparams(lr=0.2).run_id() == "2a8901884d60"
