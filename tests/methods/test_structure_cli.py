"""Refill, Refill+ and Regroup tickets from the CLI: exact budgets, exact speed paths, contract keys."""

import pytest
import torch

from ticketbench import storage, paths
from ticketbench.artifacts import CORE_KEYS, load_checkpoint, read_metrics
from ticketbench.cli import main

from conftest import pretrain_synthetic

# Structure runs time every ticket; these tests assert no speed, so one second of timing each is plenty.
FAST_TIMING = ("--timing-max-seconds", "1")
from ticketbench.masks import Mask
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.structure.refill import channel_budget, joint_budget
from ticketbench.methods.structure.units import unit_groups
from ticketbench.methods.structure.slim import load_slim

ROUNDS = 2


@pytest.fixture(scope="module")
def imp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("structure")
    pre, imp = root / "pre", root / "imp"
    pretrain_synthetic(pre, epochs=2)
    assert main(["imp", "--pretrain", str(pre), "--out", str(imp), "--rounds", str(ROUNDS), "--policy",
                 "structure_lth", "--no-progress"]) == 0
    return root, pre, imp


@pytest.mark.parametrize("method", ["refill", "refill_plus"])
def test_refill_tickets(imp_run, method):
    root, pre, imp = imp_run
    out = root / method
    groups = unit_groups(load_pretrained(pre).new_model(), torch.zeros(1, 3, 16, 16))
    assert main(["structure", *FAST_TIMING, "--pretrain", str(pre), "--imp", str(imp), "--method", method, "--rho", "0.25",
                 "--timing-rounds", "2", "--no-progress", "--out", str(out)]) == 0
    m = read_metrics(paths.metrics(out))
    assert set(CORE_KEYS) <= set(m) and m["method"] == method and len(m["rounds"]) == ROUNDS
    for r in range(1, ROUNDS + 1):
        imp_mask, _ = Mask.load(imp / f"round{r}" / "mask.safetensors")
        mask, _ = Mask.load(out / f"round{r}" / "mask.safetensors")
        row = read_metrics(out / f"round{r}" / "metrics.json")
        rho = 0.25 if method == "refill_plus" else 0.0
        joint = {}
        for g in groups:
            if g.root in row["coupled_groups"]:
                budget = joint_budget([imp_mask[n] for n in g.weights()], g.width, rho)
                alive = [mask[n].flatten(1).any(1) for n in g.weights()]
                assert all(torch.equal(a, alive[0]) for a in alive), "coupled layers keep the same channels"
                joint.update({n: budget for n in g.weights()})
        assert joint, "test_resnet's residual streams are coupled groups"
        for n, m_imp in imp_mask.items():
            channels = mask[n].flatten(1)
            alive = channels.any(1)
            assert bool((channels[alive]).all()), "kept channels are fully dense"
            assert int(alive.sum()) == joint.get(n, channel_budget(m_imp, rho))
        assert row["max_abs_diff"] <= 1e-4
        slim_model, meta = load_slim(out / f"round{r}" / "slim.safetensors")
        state, _ = load_checkpoint(out / f"round{r}" / "model.safetensors")
        assert sum(p.numel() for p in slim_model.parameters()) < sum(v.numel() for k, v in state.items()
                                                                      if "running" not in k and "num_batches" not in k)
        assert 0 < row["flops_fraction"] < 1 and row["time_saving"] == pytest.approx(1 - row["latency_fraction"])


@pytest.fixture(scope="module")
def regroup_run(imp_run):
    root, pre, imp = imp_run
    out = root / "regroup"
    # The synthetic backbone's convs are below the default size threshold and its blocks gather 0.55-1.0 of the
    # dense work: these thresholds let some layers run block-sparse and keep others dense.
    assert main(["structure", *FAST_TIMING, "--pretrain", str(pre), "--imp", str(imp), "--method", "regroup", "--row-threshold", "7",
                 "--blocksparse-min-macs", "0", "--blocksparse-max-work", "0.9", "--timing-rounds", "2",
                 "--no-progress", "--out", str(out)]) == 0
    return out


def test_regroup_tickets(imp_run, regroup_run):
    root, pre, imp = imp_run
    out = regroup_run
    for r in range(1, ROUNDS + 1):
        row = read_metrics(out / f"round{r}" / "metrics.json")
        mask, _ = Mask.load(out / f"round{r}" / "mask.safetensors")
        imp_mask, _ = Mask.load(imp / f"round{r}" / "mask.safetensors")
        blocks = row["regroup"]["blocks"]
        for n in mask:
            if n in row["fallback_layers"]:
                assert torch.equal(mask[n], imp_mask[n])
                continue
            union = torch.zeros(mask[n].shape[0], mask[n][0].numel(), dtype=torch.bool)
            for b in blocks[n]:
                assert len(b["rows"]) > 7
                union[torch.tensor(b["rows"])[:, None], torch.tensor(b["cols"])[None]] = True
            assert torch.equal(union.view_as(mask[n]), mask[n])
        assert row["max_abs_diff"] <= 1e-4
        # One row per regrouped layer: the fixed rule's inputs and outcome, and both paths' reported latency.
        layers = row["blocksparse_layers"]
        assert sorted(x["layer"] for x in layers) == sorted(n for n in mask if blocks.get(n))
        for x in layers:
            assert x["blocksparse"] == (x["work"] <= 0.9) and x["speedup"] > 0 and x["dense_ms"] > 0


def test_timing_uses_the_regroup_runs_rule(imp_run, regroup_run):
    root, pre, imp = imp_run
    out = root / "timing"
    assert main(["timing", "--timing-max-seconds", "1", "--pretrain", str(pre), "--imp", str(imp), "--regroup", str(regroup_run), "--timing-rounds", "2",
                 "--timing-batch", "4", "--out", str(out)]) == 0
    timing = storage.read_json(out / "timing.json")
    row = read_metrics(regroup_run / f"round{ROUNDS}" / "metrics.json")
    rule = timing["regroup_rule"]
    assert rule["blocksparse_min_macs"] == 0 and rule["blocksparse_max_work"] == 0.9
    assert rule["blocksparse_layers"] == sorted(x["layer"] for x in row["blocksparse_layers"] if x["blocksparse"])
    assert 0 < len(rule["blocksparse_layers"]) < len(row["blocksparse_layers"])


def test_structure_rejects_unknown_round(imp_run, capsys):
    root, pre, imp = imp_run
    assert main(["structure", *FAST_TIMING, "--pretrain", str(pre), "--imp", str(imp), "--rounds", "7", "--no-progress",
                 "--out", str(root / "bad")]) == 2
    assert "structure.rounds" in capsys.readouterr().err


def test_reinit_retrains_each_ticket_from_a_fresh_initialisation(imp_run, monkeypatch):
    """The random-ticket ablation (Structure-LTH Tables A3, A4): the structured mask, but not the rewind weights."""
    from ticketbench.methods.common import load_pretrained
    from ticketbench.methods.structure import stage

    root, pre, imp = imp_run
    starts = []
    real = stage.train_round

    def recording(pre_run, start, *args, **kwargs):
        starts.append({k: v.clone() for k, v in start.items()})
        return real(pre_run, start, *args, **kwargs)

    monkeypatch.setattr(stage, "train_round", recording)
    out = root / "refill-reinit"
    assert main(["structure", *FAST_TIMING, "--pretrain", str(pre), "--imp", str(imp), "--method", "refill", "--reinit",
                 "--rounds", "1", "--timing-rounds", "2", "--no-progress", "--out", str(out)]) == 0
    assert storage.read_json(paths.hparams(out))["settings"]["structure"]["reinit"] is True
    p = load_pretrained(pre)
    fresh = p.new_model(seed=p.seed + 10_000 + 1).state_dict()
    rewind = p.rewind_state(storage.read_json(paths.hparams(imp))["settings"]["imp"]["rewind"])
    (start,) = starts
    assert all(torch.equal(start[k], fresh[k]) for k in fresh)
    assert not all(torch.equal(start[k], rewind[k]) for k in rewind if k in start and rewind[k].is_floating_point())


def test_released_refill_presets_run_end_to_end(imp_run):
    """structure.refill_rule released and refill_batchnorm released reach the stage: each layer keeps the released
    rule's channels (int(x) + 1 with distinct scores), and emptied channels keep a trainable BatchNorm, so slimming
    removes nothing and says why."""
    import math

    root, pre, imp = imp_run
    out = root / "refill_released"
    assert main(["structure", *FAST_TIMING, "--pretrain", str(pre), "--imp", str(imp), "--method", "refill",
                 "--refill-rule", "released", "--coupled", "per_layer", "--refill-batchnorm", "released",
                 "--timing-rounds", "2", "--no-progress", "--out", str(out)]) == 0
    for r in range(1, ROUNDS + 1):
        imp_mask, _ = Mask.load(imp / f"round{r}" / "mask.safetensors")
        mask, _ = Mask.load(out / f"round{r}" / "mask.safetensors")
        for n, m_imp in imp_mask.items():
            rows = m_imp.flatten(1)
            x = int(rows.sum()) / rows.shape[1]
            full = int(mask[n].flatten(1).all(1).sum())
            assert full == min(rows.shape[0], math.floor(x) + 1) or int(rows.sum()) == 0, n
        state, _ = load_checkpoint(out / f"round{r}" / "model.safetensors")
        assert not any(k.endswith(".bias") and "bn" in k and bool((v == 0).all()) for k, v in state.items())
        row = read_metrics(out / f"round{r}" / "metrics.json")
        assert row["units_removed"] == 0 and row["no_structure_reason"]
    assert main(["structure", "--pretrain", str(pre), "--imp", str(imp), "--method", "refill", "--refill-rule",
                 "released", "--out", str(root / "refused")]) == 2  # coupled joint: one line, nothing written
    assert not (root / "refused").exists()
