"""Reference IMP (OpenLTH) and the three papers' IMP conventions (config/paper_tables/imp_reference.yaml): the
settings our IMP runs used."""

from __future__ import annotations

from typing import Any

from ..needs import Need, PaperOnly, PaperTable, Run, cell_named, cell_of
from ..results import Results
from .framework import cells_or_unmapped, every_column, lr_text, runs_of, table, unmapped_row
from .prac import RN20_C10
from .structure_lth import RN18_C10


def _openlth_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return unmapped_row(t, row)
    # The grid's vanilla IMP is the reference run the OpenLTH recipe is compared with.
    run = (Run("imp", cell, "full"),)
    return {**{c: run for c in t.value_columns}, "cifar_aug": (Run("imp", cell, "full", dense=True),),
            "init": PaperOnly("weight initialisation is the network definition's (ticketbench.models), not a "
                              "setting of the run")}


def _pruning(imp: dict) -> str:
    return (f"{imp['scope']} magnitude, {imp['rate']:.0%} of the remaining weights per round, layers: policy "
            f"{imp['policy']}")


def _rewinding(imp: dict) -> str:
    return f"to {imp['rewind']}" + ("; the LR schedule resumes there" if imp.get("lr_resume") else
                                    "; the LR schedule restarts")


@table("imp_openlth", needs=_openlth_needs)
def _openlth(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    out: dict[str, Any] = {}
    h = runs_of(needs["batch_size"])[0].hparams(res) if runs_of(needs["batch_size"]) else None
    if h and "train" in h and "imp" in h:
        tr, imp = h["train"], h["imp"]
        sched = lr_text(tr).split("; ", 1)[1].replace(f" of {tr['epochs']} epochs", "")
        out = {"batch_size": tr["batch_size"], "optimizer": f"SGD m {tr['momentum']:g}",
               "lr_schedule": f"{tr['lr']:g}, {sched}", "epochs": tr["epochs"],
               "weight_decay": f"{tr['weight_decay']:g}", "pruning": _pruning(imp), "rewinding": _rewinding(imp),
               "levels": f"{imp['rounds']} rounds (round 0 = dense)"}
    dense = runs_of(needs["cifar_aug"])[0].hparams(res) if runs_of(needs["cifar_aug"]) else None
    if dense and "data" in dense:
        data = dense["data"]
        out["cifar_aug"] = (("no augmentation" if data.get("no_augment") else "the data layer's augmentation") +
                            f" (data.no_augment {str(bool(data.get('no_augment'))).lower()}), image size " +
                            (str(data["image_size"]) if data.get("image_size") else "the dataset's own"))
    return out


# Which run of the grid follows each paper's IMP conventions, on the paper's own headline cell.
CONVENTION_RUNS = {"OpenLTH": ("imp", ("CIFAR-10", "ResNet-20"), "full"), "PrAC": ("prac", RN20_C10, ""),
                   "Structure-LTH": ("imp", RN18_C10, "structure_lth")}


@every_column
def _conventions_needs(t: PaperTable, row: dict) -> Need:
    phase, (d, n), folder = CONVENTION_RUNS[row["paper"]]
    return cells_or_unmapped([(f"{d} {n}", cell_named(d, n))], lambda cell: [Run(phase, cell, folder)])


@table("imp_conventions", needs=_conventions_needs)
def _conventions(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    runs = runs_of(needs["rounds"])
    h = runs[0].hparams(res) if runs else None
    if not h or "imp" not in h or "train" not in h:
        return {}
    imp, tr, prac = h["imp"], h["train"], h.get("prac")
    epochs = f"{tr['epochs']}"
    if prac is not None:
        # PrAC trains each round on its set for proportionally fewer iterations, and stops early.
        epochs += f" × size(P)/size(D0) ({imp['epoch_scaling']})" + ("" if prac.get("no_early_stop") else
                                                                      ", plus early stop")
    return {"rate_per_round": f"{imp['rate']:.0%} {imp['scope']}", "layers_pruned": f"policy {imp['policy']}",
            "rewind_point": _rewinding(imp).removeprefix("to "), "epochs_per_round": epochs,
            "rounds": str(imp["rounds"])}
