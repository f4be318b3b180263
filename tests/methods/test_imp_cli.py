"""IMP, PrAC-IMP, the transfer experiment and the random baselines, end to end from the CLI on tiny data."""

import pytest
import torch

from ticketbench import io, paths
from ticketbench.artifacts import CORE_KEYS, load_checkpoint, read_metrics, unpack_bits
from ticketbench.cli import main
from ticketbench.masks import Mask, prunable_names
from ticketbench.methods.common import load_pretrained, train_round
from ticketbench.hparams import TrainHparams

PRE = ["--dataset", "synthetic", "--epochs", "3", "--batch-size", "64", "--rewind-epochs", "0,1", "--no-progress"]
ROUNDS = 3


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("imp")
    runs = {}
    for backbone in ("test_resnet", "cifar_resnet20"):
        out = root / "pretrain" / backbone
        assert main(["pretrain", *PRE, "--backbone", backbone, "--out", str(out)]) == 0
        runs[backbone] = out
    return root, runs


def _imp(pre, out, *extra):
    assert main(["imp", "--pretrain", str(pre), "--out", str(out), "--rounds", str(ROUNDS), "--no-progress",
                 *extra]) == 0
    return read_metrics(paths.metrics(out))


def test_imp_rounds_sparsity_and_accounting(pretrained):
    root, runs = pretrained
    m = _imp(runs["test_resnet"], root / "imp_full")
    assert set(CORE_KEYS) <= set(m) and m["method"] == "imp" and len(m["rounds"]) == ROUNDS
    pre_iters = read_metrics(paths.metrics(runs["test_resnet"]))["train_iterations"]
    cumulative = pre_iters
    for r, row in enumerate(m["rounds"], start=1):
        mask, meta = Mask.load(root / "imp_full" / f"round{r}" / "mask.safetensors")
        expected = 1 - 0.8 ** r
        assert abs(mask.sparsity() - expected) <= len(mask) / mask.total  # within one weight per layer
        assert row["sparsity"] == pytest.approx(mask.sparsity())
        assert row["find_iterations"] == cumulative
        cumulative += row["train_iterations"]
        assert row["cumulative_iterations"] == cumulative
        state, _ = load_checkpoint(root / "imp_full" / f"round{r}" / "model.safetensors")
        assert all(torch.all(state[n][~mask[n]] == 0) for n in mask)  # the trained ticket honours its mask
        if r > 1:
            assert not any((mask[n] & ~prev[n]).any() for n in mask)  # pruned weights never come back
        prev = mask


def test_rewind_restores_snapshot_for_surviving_weights(pretrained):
    _, runs = pretrained
    pre = load_pretrained(runs["test_resnet"])
    names = prunable_names(pre.new_model(), "prac")
    from ticketbench.masks import magnitude_prune

    mask = magnitude_prune({n: pre.final_state[n] for n in names}, 0.5)
    rewind = pre.rewind_state("ep1")
    hp = TrainHparams(epochs=1, batch_size=64, rewind_epochs="0")
    _, res = train_round(pre, rewind, mask, hp, device=torch.device("cpu"), progress=False)
    start = res.snapshots["ep0"]
    for k, v in rewind.items():
        expected = v * mask[k] if k in mask else v
        assert torch.equal(start[k], expected), k


def test_prac_imp_transfer_and_savings(pretrained):
    root, runs = pretrained
    full = root / "imp_full_tr"
    _imp(runs["test_resnet"], full)
    prac = root / "prac"
    assert main(["prac", "--pretrain", str(runs["test_resnet"]), "--out", str(prac), "--rounds", str(ROUNDS),
                 "--no-progress"]) == 0
    m = read_metrics(paths.metrics(prac))
    n = load_pretrained(runs["test_resnet"]).splits.train.base_size
    for r, row in enumerate(m["rounds"], start=1):
        sets, _ = io.load_tensors(prac / f"round{r}" / "prac_set.safetensors")
        assert row["prac_trained_size"] == len(sets["trained_on"]) <= n
        assert set(sets["next"].tolist()) == set(sets["cet"].tolist()) | set(sets["cep"].tolist())
        assert row["cep_size"] == len(sets["cep"]) and row["cet_size"] == len(sets["cet"])
        assert 0 <= row["test_acc"] <= 1 and "search_test_acc" in row
        # Each round keeps its ticket's per-example test correctness, so the report can pair methods.
        assert unpack_bits(row["test_correct"]).mean() == pytest.approx(row["test_acc"])
    assert m["test_correct"] == m["rounds"][-1]["test_correct"]
    # The transfer experiment: test_resnet's PrAC sets drive cifar_resnet20.
    tr = root / "transfer"
    t = _imp(runs["cifar_resnet20"], tr, "--subsets", str(prac), "--evaluate-tickets")
    for r, row in enumerate(t["rounds"], start=1):
        sets, _ = io.load_tensors(prac / f"round{r}" / "prac_set.safetensors")
        assert row["data_fraction"] == pytest.approx(len(sets["trained_on"]) / n)
    out = root / "savings.json"
    assert main(["prac-savings", "--full", str(full), "--prac", str(prac), "--out", str(out)]) == 0
    s = io.read_json(out)
    assert len(s["rows"]) == ROUNDS and "saving" in s


def test_random_baselines_follow_the_reference(pretrained):
    root, runs = pretrained
    ref = root / "imp_ref"
    _imp(runs["test_resnet"], ref)
    rp = _imp(runs["test_resnet"], root / "rp", "--baseline", "random_prune", "--reference", str(ref))
    ri = _imp(runs["test_resnet"], root / "ri", "--baseline", "random_reinit", "--reference", str(ref))
    assert rp["method"] == "random_prune" and ri["method"] == "random_reinit"
    for r in range(1, ROUNDS + 1):
        m_ref, _ = Mask.load(ref / f"round{r}" / "mask.safetensors")
        m_rp, _ = Mask.load(root / "rp" / f"round{r}" / "mask.safetensors")
        m_ri, _ = Mask.load(root / "ri" / f"round{r}" / "mask.safetensors")
        assert all(torch.equal(m_ri[n], m_ref[n]) for n in m_ref)
        assert all(int(m_rp[n].sum()) == int(m_ref[n].sum()) for n in m_ref)
        assert any(not torch.equal(m_rp[n], m_ref[n]) for n in m_ref)


def test_missing_reference_and_bad_rewind_are_clear(pretrained, capsys):
    root, runs = pretrained
    assert main(["imp", "--pretrain", str(runs["test_resnet"]), "--out", str(root / "x"), "--baseline",
                 "random_prune", "--no-progress"]) == 2
    assert "reference" in capsys.readouterr().err
    assert main(["imp", "--pretrain", str(runs["test_resnet"]), "--out", str(root / "y"), "--rewind", "ep9",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "rewind='ep9'" in err and "ep0, ep1" in err


def test_an_iteration_rewind_resumes_the_schedule_at_that_iteration(tmp_path):
    """OpenLTH's it<n> rewind with lr_resume: each round retrains from step n of the dense schedule, not step 0."""
    pre = tmp_path / "pre"
    assert main(["pretrain", *PRE, "--backbone", "test_resnet", "--rewind-iterations", "3", "--out", str(pre)]) == 0
    per_epoch = read_metrics(paths.metrics(pre))["epochs"][0]["iterations"]
    m = _imp(pre, tmp_path / "imp", "--rewind", "it3", "--lr-resume", "--rounds", "1")
    assert m["rounds"][0]["train_iterations"] == 3 * per_epoch - 3
    restarted = _imp(pre, tmp_path / "imp_restart", "--rewind", "it3", "--rounds", "1")
    assert restarted["rounds"][0]["train_iterations"] == 3 * per_epoch
