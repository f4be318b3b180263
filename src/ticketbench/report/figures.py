"""The papers' figures, regenerated from our results with seaborn (PNG, byte-stable for a given input).

Every figure draws each seed's run and shows the mean with its 95% interval over seeds: bands and error bars are
the tables' Student-t interval of the mean over seeds, bar charts add each seed as a dot, heatmaps write mean ±
t-interval.
"""

from __future__ import annotations

import io as _io
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .. import storage  # noqa: E402
from ..methods.registry import figure_order  # noqa: E402
from .grid import NO_STRUCTURE, timed_rows  # noqa: E402
from .needs import PaperTable, cell_of  # noqa: E402
from .results import Results, overlap_init  # noqa: E402
from .stats import seed_interval  # noqa: E402

def _t_interval(values) -> tuple[float, float]:
    """The tables' Student-t interval over seeds: seaborn's own bootstrap over three seeds stays inside their
    range and would draw bands narrower than the numbers beside them."""
    est = seed_interval(list(values))
    if est is None:
        return (float("nan"), float("nan"))
    return (est.mean, est.mean) if est.lo is None else (est.lo, est.hi)


CI = _t_interval
REMAINING = "weights remaining (%)"
SPREAD = "mean ± 95% t-interval over seeds"


def _save(fig, path: Path) -> str:
    buf = _io.BytesIO()
    # No software/date metadata, so the same results give the same bytes (the DVC round trip checks this).
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    storage.write_bytes(path, buf.getvalue())
    return path.name


def _one_x_per_round(df: pd.DataFrame, x: str, by: list[str]) -> pd.DataFrame:
    """Seeds of one round can differ slightly in sparsity (structured tickets): giving them their mean sparsity
    lets seaborn pool the seeds of a round into one point with its interval."""
    df[x] = df.groupby(by)[x].transform("mean")
    return df


def _accuracy_frame(res: Results) -> pd.DataFrame:
    rows = []
    for (phase, d, b, seed, variant), m in sorted(res.runs.items()):
        cell = f"{d} x {b}"
        if phase in ("imp", "prac", "structure"):
            for r in m.get("rounds", []):
                rows.append({"cell": cell, "run": f"{phase}/{variant}", "round": r["round"], "method": m["method"],
                             REMAINING: 100 * (1 - r["sparsity"]), "test accuracy (%)": 100 * r["test_acc"]})
        elif phase == "jackpot" and variant.startswith("magnitude"):
            rows.append({"cell": cell, "run": f"{phase}/{variant}", "round": 0, "method": "jackpot",
                         REMAINING: 100 * (1 - m["sparsity"]), "test accuracy (%)": 100 * m["test_acc"]})
    return _one_x_per_round(pd.DataFrame(rows), REMAINING, ["cell", "run", "round"]) if rows else pd.DataFrame()


def paper_points(tables: list[PaperTable], cell: tuple[str, str]) -> dict[str, list[tuple[float, float]]]:
    """The (weights remaining %, accuracy %) points the papers' tables give for our ``cell``, by series
    (``<table source>: <method>``), from each table's declared ``curves``."""
    out: dict[str, list[tuple[float, float]]] = {}
    for t in tables:
        for name, (x, y) in t.curves.items():
            for row in t.rows:
                if cell_of(row, t) == cell and isinstance(row.get(x), (int, float)) and \
                        isinstance(row.get(y), (int, float)):
                    out.setdefault(f"{t.source}: {name}", []).append((float(row[x]), float(row[y])))
    return out


def accuracy_vs_sparsity(res: Results, out: Path, tables: list[PaperTable] = ()) -> str | None:
    df = _accuracy_frame(res)
    if df.empty:
        return None
    known = figure_order()
    # Registered methods in their order, then the controls of other variants' masks (random_reinit-of-snip, ...).
    order = [m for m in known if m in set(df["method"])] + sorted(set(df["method"]) - set(known))
    g = sns.relplot(data=df, x=REMAINING, y="test accuracy (%)", hue="method", hue_order=order, col="cell",
                    kind="line", marker="o", errorbar=CI, col_wrap=min(3, df["cell"].nunique()),
                    height=3.6, facet_kws={"sharey": False})
    drawn = False
    for ax, cell in zip(g.axes.flat, g.col_names):
        d, b = cell.split(" x ")
        dense = seed_interval(m["test_acc"] for m in res.dense_runs((d, b)))
        if dense is not None:
            # Both papers' matching thresholds: Structure-LTH's "at least dense" and PrAC's "within 1% of dense".
            ax.axhline(100 * dense.mean, color="k", ls="--", lw=1, label="dense")
            ax.axhline(100 * dense.mean - 1, color="k", ls=":", lw=1)
            if dense.half is not None:
                ax.axhspan(100 * dense.lo, 100 * dense.hi, color="k", alpha=0.08, lw=0)
        for i, (series, points) in enumerate(sorted(paper_points(tables, (d, b)).items())):
            xs, ys = zip(*sorted(points, reverse=True))
            ax.plot(xs, ys, ls="none", marker="xP*+"[i % 4], ms=7, color="0.25", label=f"paper {series}")
            drawn = True
        if drawn:
            ax.legend(fontsize=7, loc="lower left")
        # The field's axis: weights remaining on a log scale, sparser to the right, so that 90-99% sparsity is
        # spread over a decade instead of crowded at one end.
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    g.set_axis_labels(f"{REMAINING}, log scale", f"test accuracy (%)\n{SPREAD}")
    g.figure.text(0.01, -0.02, "dashed: dense (Structure-LTH's 'at least dense'); dotted: dense - 1 point (PrAC's "
                  "'within 1% of dense')" + ("; markers without lines: the paper's own numbers (its tables)"
                                              if drawn else ""), fontsize=8, ha="left")
    return _save(g.figure, out / "accuracy_vs_sparsity.png")


def prac_set_size(res: Results, out: Path) -> str | None:
    y = "PrAC set (% of training set)"
    rows = [{"cell": f"{d} x {b}", "round": r, y: 100 * row["prac_trained_fraction"]}
            for (d, b) in res.cells("prac") for r, seeds in res.per_round("prac", (d, b)).items()
            for row in seeds if row.get("prac_trained_fraction") is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.lineplot(data=pd.DataFrame(rows), x="round", y=y, hue="cell", marker="o", errorbar=CI,
                 ax=ax)
    ax.set_ylabel(f"{y}\n{SPREAD}")
    return _save(fig, out / "prac_set_size.png")


def time_saving(res: Results, out: Path) -> str | None:
    # A ticket that lost no FLOPs or parameters has no saving to draw; how many were left out, and how many drawn
    # savings were timed without a tight interval, is written under the figure.
    rows, left_out, noisy = [], 0, 0
    for (d, b) in res.cells("structure"):
        for v in res.variants("structure", (d, b)):
            for r, seeds in res.per_round("structure", (d, b), v).items():
                counted, none = timed_rows(seeds)
                left_out += len(none)
                noisy += sum(row.get("timing_verdict") == "noisy" for row in counted)
                rows += [{"cell": f"{d} x {b}", "method": v, "round": r, "sparsity (%)": 100 * row["sparsity"],
                          "time saving (%)": 100 * row["time_saving"]} for row in counted]
    if not rows:
        return None
    df = _one_x_per_round(pd.DataFrame(rows), "sparsity (%)", ["cell", "method", "round"])
    g = sns.relplot(data=df, x="sparsity (%)", y="time saving (%)", hue="method", col="cell", kind="line", marker="o",
                    errorbar=CI, col_wrap=min(3, df["cell"].nunique()), height=3.2)
    for ax in g.axes.flat:
        ax.axhline(0, color="k", lw=0.8)
    g.set_axis_labels("sparsity (%)", f"time saving (%)\n{SPREAD}")
    notes = ([f"{left_out} run-round(s) left out: {NO_STRUCTURE}"] if left_out else []) + \
        ([f"{noisy} of {len(rows)} points timed without a tight interval (noisy)"] if noisy else [])
    if notes:
        g.figure.text(0.01, -0.02, "; ".join(notes), fontsize=8, ha="left")
    return _save(g.figure, out / "time_saving.png")


def overlap_heatmaps(res: Results, out: Path) -> list[str]:
    """Per layer and criterion, the mean overlap over seeds, written as mean±t half-width (n > 1)."""
    by_run: dict[tuple, list[pd.DataFrame]] = {}
    for (d, b), _, name, data in res.extras_like("jackpot", "overlap-"):
        if data.get("layer_rows"):
            df = pd.DataFrame(data["layer_rows"]).set_index("layer").apply(pd.to_numeric, errors="coerce") * 100
            by_run.setdefault((d, b, name), []).append(df)
    names = []
    for (d, b, name), frames in by_run.items():
        layers = list(dict.fromkeys(x for f in frames for x in f.index))
        criteria = list(dict.fromkeys(c for f in frames for c in f.columns))
        est = [[seed_interval(f.at[layer, c] for f in frames if layer in f.index and c in f.columns)
                for c in criteria] for layer in layers]
        mean = pd.DataFrame([[e.mean if e else float("nan") for e in row] for row in est], index=layers,
                            columns=criteria)
        text = [[("" if e is None else f"{e.mean:.0f}" + (f"±{e.half:.0f}" if e.half is not None else ""))
                 for e in row] for row in est]
        fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(criteria) + 3), 0.28 * len(layers) + 1.5))
        sns.heatmap(mean, annot=text if len(layers) <= 30 else False, fmt="", cmap="viridis", vmin=0, vmax=100,
                    ax=ax, cbar_kws={"label": "% of jackpot's kept weights also kept"})
        ax.set_title(f"mask overlap with the {overlap_init(name)}-initialised jackpot, {d} x {b} "
                     f"({name.rsplit('-s', 1)[-1]} sparsity)\n"
                     f"mean ± 95% t-interval over {len(frames)} seed(s)")
        names.append(_save(fig, out / f"overlap_{d}_{b}_{name}.png"))
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
                    errorbar=CI, col_wrap=min(3, df["cell"].nunique()), height=3.2)
    g.set_axis_labels("search epoch", f"val accuracy (%)\n{SPREAD}")
    return _save(g.figure, out / "search_cost.png")


def layer_speedups(res: Results, out: Path) -> list[str]:
    """The paper's Fig. 7: per-layer speedup of slimmed and block-sparse convolutions over dense, over seeds."""
    by_run: dict[tuple, list[dict]] = {}
    settings: dict[tuple, list[str]] = {}  # one per seed
    for (d, b), _, _, data in res.extras_like("structure", "timing"):
        rows = [{"layer": row["layer"], "model": k[: -len("_speedup")], "speedup (x)": v}
                for row in data.get("layers") or [] for k, v in row.items() if k.endswith("_speedup")]
        if rows:
            key = (d, b, data["round"])
            by_run.setdefault(key, []).extend(rows)
            settings.setdefault(key, []).append(f"batch {data['batch']}, {data['device']}")
    names = []
    for (d, b, r), rows in by_run.items():
        df = pd.DataFrame(rows)
        n, setting = len(settings[(d, b, r)]), "; ".join(sorted(set(settings[(d, b, r)])))
        fig, ax = plt.subplots(figsize=(max(5, 0.35 * df["layer"].nunique() + 2), 3.4))
        sns.barplot(data=df, x="layer", y="speedup (x)", hue="model", errorbar=CI, ax=ax)
        # Each seed as a dot; no jitter, since seaborn's jitter draws from the global random state.
        sns.stripplot(data=df, x="layer", y="speedup (x)", hue="model", dodge=True, jitter=False, size=3,
                      palette={m: "k" for m in df["model"].unique()}, legend=False, ax=ax)
        ax.axhline(1, color="k", lw=0.8)
        ax.tick_params(axis="x", rotation=90, labelsize=7)
        ax.set_ylabel(f"speedup (x)\n{SPREAD}")
        ax.set_title(f"per-layer speedup over dense, {d} x {b}, round {r}, {setting}\nbars: {SPREAD} (n={n}), "
                     f"dots: seeds")
        names.append(_save(fig, out / f"layer_speedup_{d}_{b}_round{r}.png"))
    return names


def instability(res: Results, out: Path) -> str | None:
    """Frankle et al. 2020's Fig.: the error barrier against sparsity, one line per IMP run and rewind point."""
    rows = []
    for (phase, d, b, seed, source), m in sorted(res.runs.items()):
        if phase != "instability":
            continue
        for r in m.get("rounds", []):
            rows.append({"cell": f"{d} x {b}", "run": f"{source} (rewind {m.get('rewind')})", "round": r["round"],
                         REMAINING: 100 * (1 - r["sparsity"]), "error barrier (points)": 100 * r["error_barrier"]})
    if not rows:
        return None
    df = _one_x_per_round(pd.DataFrame(rows), REMAINING, ["cell", "run", "round"])
    g = sns.relplot(data=df, x=REMAINING, y="error barrier (points)", hue="run", col="cell", kind="line",
                    marker="o", errorbar=CI, col_wrap=min(3, df["cell"].nunique()), height=3.2)
    for ax in g.axes.flat:
        ax.axhline(2, color="k", ls="--", lw=1)
        # The field's axis: weights remaining on a log scale, sparser to the right.
        ax.set_xscale("log")
        ax.invert_xaxis()
    g.set_axis_labels(f"{REMAINING}, log scale", f"error barrier (points)\n{SPREAD}")
    g.figure.text(0.01, -0.02, "dashed: the 2-point stability rule (Frankle et al. 2020); round 0 is the dense "
                  "network", fontsize=8, ha="left")
    return _save(g.figure, out / "instability.png")
