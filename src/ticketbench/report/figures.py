"""The papers' figures, regenerated from our results with seaborn (PNG, byte-stable for a given input)."""

from __future__ import annotations

import io as _io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .. import io  # noqa: E402
from .results import Results  # noqa: E402

# Seaborn bootstraps the interval it draws over seeds; a fixed seed keeps a regenerated report byte-identical.
BOOTSTRAP_SEED = 0
METHOD_ORDER = ["imp", "prac", "random_prune", "random_reinit", "prac_transfer", "refill", "refill_plus", "regroup",
                "jackpot"]


def _save(fig, path: Path) -> str:
    buf = _io.BytesIO()
    # No software/date metadata, so the same results give the same bytes (the DVC round trip checks this).
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    io.write_bytes(path, buf.getvalue())
    return path.name


def _accuracy_frame(res: Results) -> pd.DataFrame:
    rows = []
    for (phase, d, b, seed, variant), m in sorted(res.runs.items()):
        cell = f"{d} x {b}"
        if phase in ("imp", "prac", "structure"):
            for r in m.get("rounds", []):
                rows.append({"cell": cell, "method": m["method"], "sparsity": 100 * r["sparsity"],
                             "test accuracy (%)": 100 * r["test_acc"]})
        elif phase == "jackpot" and variant.startswith("magnitude"):
            rows.append({"cell": cell, "method": "jackpot", "sparsity": 100 * m["sparsity"],
                         "test accuracy (%)": 100 * m["test_acc"]})
    return pd.DataFrame(rows)


def accuracy_vs_sparsity(res: Results, out: Path) -> str | None:
    df = _accuracy_frame(res)
    if df.empty:
        return None
    order = [m for m in METHOD_ORDER if m in set(df["method"])]
    g = sns.relplot(data=df, x="sparsity", y="test accuracy (%)", hue="method", hue_order=order, col="cell",
                    kind="line", marker="o", errorbar="sd", col_wrap=min(3, df["cell"].nunique()), height=3.2,
                    facet_kws={"sharey": False})
    for ax, cell in zip(g.axes.flat, g.col_names):
        d, b = cell.split(" x ")
        dense = res.dense((d, b))
        if dense is not None:
            ax.axhline(100 * dense, color="k", ls="--", lw=1, label="dense")
    g.set_axis_labels("sparsity (%)", "test accuracy (%)")
    return _save(g.figure, out / "accuracy_vs_sparsity.png")


def prac_set_size(res: Results, out: Path) -> str | None:
    rows = [{"cell": f"{d} x {b}", "round": r["round"], "PrAC set (% of training set)": 100 * r["prac_trained_fraction"]}
            for (d, b) in res.cells("prac") for r in res.rounds("prac", (d, b)) if "prac_trained_fraction" in r]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.lineplot(data=pd.DataFrame(rows), x="round", y="PrAC set (% of training set)", hue="cell", marker="o",
                 seed=BOOTSTRAP_SEED, ax=ax)
    return _save(fig, out / "prac_set_size.png")


def time_saving(res: Results, out: Path) -> str | None:
    rows = [{"cell": f"{d} x {b}", "method": v, "sparsity (%)": 100 * r["sparsity"], "time saving (%)": 100 * r["time_saving"]}
            for (d, b) in res.cells("structure") for v in res.variants("structure", (d, b))
            for r in res.rounds("structure", (d, b), v) if "time_saving" in r]
    if not rows:
        return None
    df = pd.DataFrame(rows)
    g = sns.relplot(data=df, x="sparsity (%)", y="time saving (%)", hue="method", col="cell", kind="line", marker="o",
                    seed=BOOTSTRAP_SEED, col_wrap=min(3, df["cell"].nunique()), height=3.2)
    for ax in g.axes.flat:
        ax.axhline(0, color="k", lw=0.8)
    return _save(g.figure, out / "time_saving.png")


def overlap_heatmaps(res: Results, out: Path) -> list[str]:
    names = []
    for (d, b), seed, name, data in res.extras_like("jackpot", "overlap-s"):
        if not data.get("layer_rows"):
            continue
        df = pd.DataFrame(data["layer_rows"]).set_index("layer").apply(pd.to_numeric, errors="coerce") * 100
        fig, ax = plt.subplots(figsize=(1.1 * len(df.columns) + 3, 0.28 * len(df) + 1.5))
        sns.heatmap(df, annot=len(df) <= 30, fmt=".0f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                    cbar_kws={"label": "% of jackpot's kept weights also kept"})
        ax.set_title(f"mask overlap with the jackpot, {d} x {b} seed {seed} ({name[len('overlap-s'):]} sparsity)")
        names.append(_save(fig, out / f"overlap_{d}_{b}_seed{seed}_{name}.png"))
    return names


def search_cost(res: Results, out: Path) -> str | None:
    rows = []
    for (d, b), _, _, data in res.extras_like("jackpot", "cost-s"):
        for init in ("magnitude", "random"):
            for e, acc in enumerate(data[f"{init}_curve"], start=1):
                rows.append({"cell": f"{d} x {b}", "init": init, "search epoch": e, "val accuracy (%)": 100 * acc})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    g = sns.relplot(data=df, x="search epoch", y="val accuracy (%)", hue="init", col="cell", kind="line", marker="o",
                    seed=BOOTSTRAP_SEED, col_wrap=min(3, df["cell"].nunique()), height=3.2)
    return _save(g.figure, out / "search_cost.png")


def layer_speedups(res: Results, out: Path) -> list[str]:
    """The paper's Fig. 7: per-layer speedup of slimmed and block-sparse convolutions over dense."""
    names = []
    for (d, b), seed, _, data in res.extras_like("structure", "timing"):
        if not data.get("layers"):
            continue
        rows = [{"layer": row["layer"], "model": k[: -len("_speedup")], "speedup (x)": v}
                for row in data["layers"] for k, v in row.items() if k.endswith("_speedup")]
        if not rows:
            continue
        df = pd.DataFrame(rows)
        fig, ax = plt.subplots(figsize=(max(5, 0.35 * df["layer"].nunique() + 2), 3.4))
        sns.barplot(data=df, x="layer", y="speedup (x)", hue="model", seed=BOOTSTRAP_SEED, ax=ax)
        ax.axhline(1, color="k", lw=0.8)
        ax.tick_params(axis="x", rotation=90, labelsize=7)
        ax.set_title(f"per-layer speedup over dense, {d} x {b} seed {seed}, round {data['round']}, "
                     f"batch {data['batch']}, {data['device']}")
        names.append(_save(fig, out / f"layer_speedup_{d}_{b}_seed{seed}.png"))
    return names
