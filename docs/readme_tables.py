"""The documentation's results tables and checked prose numbers, generated from the committed files.

This module owns every block between
``<!-- generated: NAME (python docs/readme_tables.py) -->`` and ``<!-- end generated -->`` in
README.md and in the pages of the documentation site (docs/**/*.md): each NAME is a key of
``BLOCKS``, whose function renders the block's text from the files under ``docs/results/`` and
``benchmarks/results/`` alone, and each NAME appears once across all those files. It also owns
``PROSE``, numbers stated in the prose outside the blocks: each function there returns a
phrase, built from the files, that at least one of the files must contain word for word.

Numbers are Python's ``format`` of the file's value (no hand rounding), so page == file.

    python docs/readme_tables.py          # rewrite the generated blocks in place, in every file
    python docs/readme_tables.py --check  # exit 1 and print a diff for every block that
                                          # differs, and every prose phrase that is missing

A new table is one render function and one entry in ``BLOCKS``, plus its markers in a page.
Plain Python + pandas: no torch, no fedhet import.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path("docs/results")
BENCHMARKS = Path("benchmarks/results")
COMMAND = "python docs/readme_tables.py"
END = "<!-- end generated -->"
BLOCK_RE = re.compile(
    r"<!-- generated: (?P<name>[\w-]+) \(" + re.escape(COMMAND) + r"\) -->\n(?P<body>.*?)" + re.escape(END),
    re.DOTALL,
)
MINUS = "\u2212"  # the pages write negative numbers with a real minus sign
PAGES = ("README.md", "docs/**/*.md")  # where blocks and checked prose live (globs, from the root)


# --- reading and formatting ------------------------------------------------------------------


def _csv(root: Path, name: str) -> pd.DataFrame:
    path = (root / RESULTS / name).resolve()
    stat = path.stat()
    return _read_csv(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _read_csv(path: Path, mtime_ns: int, size: int) -> pd.DataFrame:  # the stat fields key the cache
    return pd.read_csv(path)


def _json(root: Path, name: str) -> dict:
    return json.loads((root / BENCHMARKS / name).read_text())


def _signed(x: float, digits: int) -> str:
    return format(x, f"+.{digits}f").replace("-", MINUS)


def _pm(row: pd.Series, digits: int = 3) -> str:
    """``mean ± half-width of the 95% interval``, as fedhet's own tables write it; — where the
    metric is undefined in every seed (precision when nothing is predicted abnormal)."""
    if pd.isna(row["mean"]):
        return "—"
    if pd.isna(row["ci_high"]):  # defined in one seed only: no interval
        return f"{row['mean']:.{digits}f} (one seed)"
    return f"{row['mean']:.{digits}f} ± {(row['ci_high'] - row['ci_low']) / 2:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _one(df: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(df), dtype=bool)
    for col, value in where.items():
        mask &= df[col].to_numpy() == value
    (rows,) = np.nonzero(mask)
    if len(rows) != 1:
        raise ValueError(f"expected one row for {where}, found {len(rows)}")
    return df.iloc[rows[0]]


# --- Tables 2 and 3 --------------------------------------------------------------------------

METRIC_LABELS = {"recall": "recall", "precision": "precision", "auroc": "AUROC", "specificity": "specificity",
                 "auprc": "AUPRC"}  # fmt: skip


def _study_table(root: Path, file: str, other: str, label: str) -> str:
    df = _csv(root, file)
    header = ["metric", "federated (fedhet)", "federated (study)", f"{label} (fedhet)", f"{label} (study)"]
    rows = []
    for _, r in df.iterrows():
        cells = [METRIC_LABELS.get(r["metric"], r["metric"])]
        for mode in ("federated", other):
            m = {"mean": r[f"{mode}_mean"], "ci_low": r[f"{mode}_ci_low"], "ci_high": r[f"{mode}_ci_high"]}
            study = r[f"{mode}_study"]
            cells += [_pm(m), "—" if pd.isna(study) else f"{study:.3f}"]
        rows.append(cells)
    return _table(header, rows)


def table2(root: Path) -> str:
    return _study_table(root, "table2.csv", "local", "small only")


def table3(root: Path) -> str:
    return _study_table(root, "table3.csv", "large_only", "large only")


# --- training budget -------------------------------------------------------------------------

BUDGET_ROUNDS = (1, 2, 5, 10)
BUDGET_COLUMNS = (
    ("federated", "recall", "federated recall"),
    ("local", "recall", "small only recall"),
    ("large_only", "precision", "large only precision"),
    ("local", "auroc", "small only AUROC"),
    ("large_only", "auroc", "large only AUROC"),
)


def _budget_table(root: Path, file: str, columns: tuple, rounds: tuple, cell: Callable[[pd.Series], str]) -> str:
    """Small hospitals' metrics after each of ``rounds`` (no DP), a column per (mode, metric)."""
    df = _csv(root, file)
    df = df[df["dp"] == "nodp"]
    rows = [
        [str(r)] + [cell(_one(df, round=r, mode=mode, metric=metric)) for mode, metric, _ in columns] for r in rounds
    ]
    return _table(["rounds"] + [label for *_, label in columns], rows)


def budget(root: Path) -> str:
    return _budget_table(root, "budget.csv", BUDGET_COLUMNS, BUDGET_ROUNDS, lambda r: f"{r['mean']:.3f}")


# --- trend tests -----------------------------------------------------------------------------

TREND_DIGITS = 4  # slopes per 10 points are 0.0001–0.02: four decimals show them all


def _trend_cell(r: pd.Series, with_ci: bool) -> str:
    d = TREND_DIGITS
    text = _signed(r["slope_per_10pp"], d)
    if with_ci:  # the CI columns hold the slope per unit ratio; per 10 points is / 10
        text += f" [{_signed(r['ci_low'] / 10, d)}, {_signed(r['ci_high'] / 10, d)}]"
    verdict = r["verdict"]
    return text + (f", {verdict}" if verdict in ("rises", "falls") else f", p {r['p_holm']:.2f}")


def trends(root: Path) -> str:
    df = _csv(root, "trends.csv")
    df = df[df["dp"] == "nodp"]
    header = ["grid", "small hospitals at", "recall, small mean", "recall, large", "AUROC, small mean", "AUROC, large"]
    columns = (
        ("recall", "small hospitals (mean)", True),
        ("recall", "large hospital", True),
        ("auroc", "small hospitals (mean)", False),
        ("auroc", "large hospital", False),
    )
    rows = []
    for experiment in ("fixed_size", "fixed_count"):
        for ratio in sorted(df.loc[df["experiment"] == experiment, "small.abnormal_ratio"].unique()):
            cells = [experiment.replace("_", " "), f"{ratio:.0%}"]
            for metric, curve, with_ci in columns:
                r = _one(df, experiment=experiment, metric=metric, curve=curve, **{"small.abnormal_ratio": ratio})
                cells.append(_trend_cell(r, with_ci))
            rows.append(cells)
    return _table(header, rows)


# --- fixed size minus fixed count ------------------------------------------------------------

COUNT_VS_SIZE_RATIOS = (0.2, 0.3, 0.4, 0.5)  # the large hospital's ratios shown
FIXED_ABNORMAL_COUNT = 3000  # config: experiments.fixed_count large.abnormal_count


def count_vs_size(root: Path) -> str:
    df = _csv(root, "count_vs_size.csv")
    df = df[(df["curve"] == "small hospitals (mean)") & (df["metric"] == "recall")]
    header = ["small hospitals at"]
    for i, x in enumerate(COUNT_VS_SIZE_RATIOS):
        size = f"{FIXED_ABNORMAL_COUNT / x:,.0f}"
        header.append(f"large at {x:.0%} ({size} imgs)" if i == 0 else f"{x:.0%} ({size})")
    rows = []
    for small in sorted(df["small.abnormal_ratio"].unique()):
        cells = [f"{small:.0%}"]
        for x in COUNT_VS_SIZE_RATIOS:
            r = _one(df, **{"large.abnormal_ratio": x, "small.abnormal_ratio": small})
            cells.append(f"{_signed(r['mean'], 3)} [{_signed(r['ci_low'], 3)}, {_signed(r['ci_high'], 3)}]")
        rows.append(cells)
    return _table(header, rows)


# --- Figures 6 and 7 -------------------------------------------------------------------------


def _privacy_figure(root: Path, file: str) -> str:
    df = _csv(root, file)
    dp = df[~df["reference"]]
    ref = df[df["reference"] & (df["placement"] == "none")]
    clip = df[df["reference"] & (df["placement"] != "none")]  # clipping only: ε = ∞, no noise
    epsilons = sorted(dp["epsilon"].unique())
    header = ["evaluated on", "metric", "curve"] + [f"ε = {e:g}" for e in epsilons]
    header += ["clipping only (ε = ∞)"] * (not clip.empty) + ["no DP"]
    rows = []
    for group in ("large hospital", "small hospitals (mean)"):
        for metric in sorted(dp["metric"].unique()):
            for curve in dp["curve"].drop_duplicates():
                part = dp[(dp["group"] == group) & (dp["metric"] == metric) & (dp["curve"] == curve)]
                mode, placement = part["mode"].iloc[0], part["placement"].iloc[0]
                cells = [group, metric, curve]
                cells += [_pm(_one(part, epsilon=e)) if (part["epsilon"] == e).any() else "—" for e in epsilons]
                if not clip.empty:
                    cells.append(_pm(_one(clip, group=group, metric=metric, mode=mode, placement=placement)))
                cells.append(_pm(_one(ref, group=group, metric=metric, mode=mode)))
                rows.append(cells)
    return _table(header, rows)


def fig6(root: Path) -> str:
    return _privacy_figure(root, "fig6.csv")


def fig7(root: Path) -> str:
    return _privacy_figure(root, "fig7.csv")


def fig11(root: Path) -> str:
    return _privacy_figure(root, "fig11.csv")


# --- Figures 12 and 13: the DP settings with their lr and C chosen on validation splits ------

SMALL = "small hospitals (mean)"


def _setting_label(row: pd.Series) -> str:
    if row["placement"] == "none":
        return "no DP"
    return "clipping only (ε = ∞)" if np.isinf(row["epsilon"]) else f"ε = {row['epsilon']:g}"


def _same_setting(df: pd.DataFrame, row: pd.Series, metric: str) -> pd.Series:
    """``row``'s setting (mode, placement, ε) and ``metric`` at the small hospitals in ``df``."""
    where = {"group": SMALL, "metric": metric, "mode": row["mode"], "placement": row["placement"]}
    if row["placement"] != "none":
        where["epsilon"] = row["epsilon"]
    return _one(df, **where)


# Where a tuned figure's hyperparameters were chosen (its ``tuning`` column), as column labels.
TUNING_WAYS = {"public": "public proxies", "validation": "validation, charged"}


def _tuned_table(root: Path, fixed_file: str, tuned_file: str) -> str:
    """Per setting of a tuned figure: the small hospitals' recall and AUROC with the study's fixed
    hyperparameters (C = 1, lr = 0.01), then per way of tuning the chosen C and lr and the same
    two metrics. A figure file without a ``tuning`` column holds only settings chosen on
    validation splits; its fixed rows are in ``fixed_file``."""
    tuned = _csv(root, tuned_file)
    if "tuning" in tuned:
        fixed = tuned[tuned["tuning"] == "fixed"]
        ways = {w: tuned[tuned["tuning"] == w] for w in TUNING_WAYS if (tuned["tuning"] == w).any()}
    else:
        fixed, ways = _csv(root, fixed_file), {"validation": tuned}
    first = next(iter(ways.values()))
    settings = first[(first["group"] == SMALL) & (first["metric"] == "recall")]
    settings = settings.sort_values(["mode", "placement", "epsilon"], na_position="last")
    header = ["curve", "setting", "recall, fixed", "AUROC, fixed"]
    for way in ways:
        header += [f"{TUNING_WAYS[way]}: C, lr", "recall", "AUROC"]
    rows = []
    for _, row in settings.iterrows():
        curve = "large only" if row["mode"] == "large_only" else row["curve"].split(", clipping only")[0]
        cells = [curve, _setting_label(row)] + [_pm(_same_setting(fixed, row, m)) for m in ("recall", "auroc")]
        for chosen in ways.values():
            pick = _same_setting(chosen, row, "recall")
            cells.append(
                f"lr {pick['lr']:g}"
                if row["placement"] == "none"
                else f"C {pick['max_grad_norm']:g}, lr {pick['lr']:g}"
            )
            cells += [_pm(_same_setting(chosen, row, m)) for m in ("recall", "auroc")]
        rows.append(cells)
    return _table(header, rows)


def fig12(root: Path) -> str:
    return _tuned_table(root, "fig6.csv", "fig12.csv")


def fig13(root: Path) -> str:
    return _tuned_table(root, "fig7.csv", "fig13.csv")


# --- spent ε ---------------------------------------------------------------------------------


PRIVACY_FILES = ("privacy_fig6.csv", "privacy_fig7.csv")
CELL_COLUMNS = ["scenario", "mode", "algorithm", "dp", "seed", "holdout"]


def _privacy_rows(root: Path) -> pd.DataFrame:
    """Figures 6–7's privacy rows, once per hospital and cell (the figures share cells)."""
    both = pd.concat([_csv(root, f) for f in PRIVACY_FILES])
    return both.drop_duplicates([*CELL_COLUMNS, "hospital"])


def privacy_spent(root: Path) -> str:
    df = _privacy_rows(root)
    private = df[df["private"].astype(bool) & np.isfinite(df["epsilon_target"])]  # not the clipping-only control
    share = private["epsilon_spent"] / private["epsilon_target"]
    links = " and ".join(f"[docs/results/{f}](docs/results/{f})" for f in PRIVACY_FILES)
    text = (
        f"Each of the {len(private)} private hospital trainings (one row per hospital and cell in {links}) spent"
        f" between {share.min():.1%} and {share.max():.1%} of its ε. A hospital is private only where it trains:"
        f" the small hospitals of `large_only` cells only evaluate, and their rows say `trained False`."
    )
    return textwrap.fill(text, width=95, break_long_words=False, break_on_hyphens=False)


# --- the one-run audit ----------------------------------------------------------------------


def _dp_label(key: str) -> str:
    if key == "nodp":
        return "no DP"
    eps = key.split("-eps", 1)[1].split("-", 1)[0]
    return "clipping only (ε = ∞)" if eps == "inf" else f"DP-SGD, ε = {eps}"


AUDIT_FILES = ("audit.csv", "audit_local.csv")  # the default config's audit, and the same in mode local


def audit(root: Path) -> str:
    """Accounted ε beside the one-run audit's lower bound, per audit cell."""
    df = pd.concat([_csv(root, f) for f in AUDIT_FILES])
    return _audit_table(df, ["mode"], [r["mode"] for _, r in df.iterrows()])


def engine_audit(root: Path) -> str:
    """The white-box engine audit: per DP-SGD setting and seed, accounted ε beside the bound."""
    df = _csv(root, "engine_audit.csv")
    return _audit_table(df, [], [[] for _ in range(len(df))])


def _audit_table(df: pd.DataFrame, lead: list[str], lead_rows: list) -> str:
    """Audit rows: accounted ε, guesses, the bound, the design's largest bound and whether the
    row could have failed (``conclusive``)."""
    header = [
        *lead,
        "training",
        "seed",
        "ε accounted",
        "guesses (right)",
        "ε lower bound, 95%",
        "largest possible",
        "conclusive",
    ]
    rows = [
        [
            *([first] if isinstance(first, str) else first),
            _dp_label(r["dp"]),
            str(r["seed"]),
            "∞" if np.isinf(r["epsilon_accounted"]) else f"{r['epsilon_accounted']:.3f}",
            f"{r['guesses']} ({r['correct']})",
            f"{r['epsilon_lower_bound']:.3f}",
            f"{r['max_bound']:.2f}",
            "yes" if r["conclusive"] else "no",
        ]
        for first, (_, r) in zip(lead_rows, df.iterrows(), strict=True)
    ]
    return _table(header, rows)


# --- cost of the grid ------------------------------------------------------------------------

COST_LABELS = {
    "fixed_size": "fixed size (Figures 2–4)",
    "fixed_count": "fixed count (Figure 5)",
    "dp_all": "DP everywhere (Figures 6–7)",
    "dp_small": "DP at small hospitals (Figure 7)",
    "all cells": "every cell of the run (incl. core)",
}


def cost(root: Path) -> str:
    df = _csv(root, "cost.csv")
    header = ["cells", "count", "mean s per cell", "CPU hours", "projected wall, 2 cores", "8 cores", "64 cores"]
    rows = [
        [
            COST_LABELS.get(r["cells"], r["cells"]),
            f"{r['n_cells']}",
            f"{r['mean_seconds']:.0f}",
            f"{r['cpu_hours']:.2f}",
        ]
        + [f"{r[f'wall_hours_{n}_cores']:.2f} h" for n in (2, 8, 64)]
        for _, r in df.iterrows()
    ]
    return _table(header, rows)


# --- speed -----------------------------------------------------------------------------------


def speed(root: Path) -> str:
    b = _json(root, "cell_nodp.json")
    header = ["wall time per cell", "training images/s", "training GFLOP/s", "matmul peak", "fraction of peak"]
    row = [
        f"{b['wall_seconds']:.1f} s ({b['train_seconds']:.1f} s training + per-round evaluation)",
        f"{b['images_per_second']:,.0f}",
        f"{b['train_gflops']:.1f}",
        f"{b['matmul_peak_gflops']:.1f} GFLOP/s",
        f"{b['fraction_of_peak']:.0%}",
    ]
    return _table(header, [row])


def gpu(root: Path) -> str:
    """One full-scale federated cell on the CPU and alone on the GPU, and the GPU grid slice."""
    cpu, alone = _json(root, "cell_dp_opacus.json"), _json(root, "gpu/cell_gpu.json")  # both DP with Opacus hooks
    grid = _json(root, "gpu/grid.json")

    def cell(b: dict) -> list[str]:
        aurocs = f"{b['small_mean_auroc']:.4f} / {b['dp']['small_mean_auroc']:.4f}"
        return [f"{b['wall_seconds']:.1f} s", f"{b['dp']['wall_seconds']:.1f} s", aurocs]

    def packed(part: dict) -> str:
        return f"median {part['median_s']:.0f} s ({part['min_s']:.0f}–{part['max_s']:.0f}; {part['cells']} cells)"

    device = alone["machine"]["device"]
    rows = [
        [f"CPU, {cpu['machine']['threads']} threads (this machine), one cell", *cell(cpu)],
        [f"{device}, one cell alone", *cell(alone)],
        [
            f"{device}, {grid['slots']} cells at once: {grid['cells_finished']} finished in"
            f" {grid['window_seconds']:.0f} s = {grid['cells_per_hour']:,.0f} cells/h",
            packed(grid["nodp"]),
            packed(grid["dp"]),
            "",
        ],
    ]
    return _table(["run", "non-private cell", "DP-SGD at every hospital, ε = 1", "small AUROC (no DP / DP)"], rows)


def peers(root: Path) -> str:
    """fedhet, a plain PyTorch loop and Flower on the same cell: median [min–max] over the
    repetitions."""
    report = _json(root, "peers.json")

    def seconds(r: dict, what: str) -> str:
        return f"{r[f'median_{what}']:.1f} s [{r[f'min_{what}']:.1f}–{r[f'max_{what}']:.1f}]"

    header = ["runner", "CPUs", "wall (start-up included)", "training loop", "outside the loop", "small AUROC"]
    rows = [
        [
            r["runner"],
            str(r["cpus"]),
            seconds(r, "wall_seconds"),
            seconds(r, "loop_seconds"),
            seconds(r, "outside_loop_seconds"),
            f"{r['small_mean_auroc']:.4f}",
        ]
        for r in sorted(report["summary"], key=lambda r: (r["cpus"], r["key"] != "fedhet"))
    ]
    return _table(header, rows)


GRIDS = {"quick grid": "grid_quick.json", "full-scale DP grid (Figures 6–7)": "grid_privacy.json"}


def grid(root: Path) -> str:
    """Cells per hour of whole grids on this machine, and each cell's process time outside training."""
    header = ["grid, revision", "cells", "cells/h", "median cell process", "outside training"]
    rows = []
    for label, file in GRIDS.items():
        for run in _json(root, file)["runs"]:
            revision = f", {run['revision']}" if "revision" in run else ""
            rows.append(
                [
                    f"{label}{revision}",
                    str(run["cells_finished"]),
                    f"{run['cells_per_hour']:,.0f}",
                    f"{run['median_process_s']:.1f} s ({run['median_train_s']:.1f} s training)",
                    f"{run['outside_training_share']:.0%}",
                ]
            )
    return _table(header, rows)


def _spread(value: dict, fmt: str, unit: str = "") -> str:
    """median [min–max] of a benchmark quantity over its runs."""
    return f"{value['median']:{fmt}}{unit} [{value['min']:{fmt}}–{value['max']:{fmt}}]"


def many_cost(root: Path) -> str:
    """A federated cell's cost at few and at many small hospitals sharing the same records."""
    b = _json(root, "many_hospitals.json")
    rows = [
        [
            f"{c['small_hospitals']}",
            f"{c['small_size']:,}",
            f"{c['train_images']:,}",
            _spread(c["wall_seconds"], ".1f", " s"),
            _spread(c["microseconds_per_train_image"], ".1f", " µs"),
        ]
        for c in sorted(b["cells"].values(), key=lambda c: c["small_hospitals"])
    ]
    high, low = b["ratio"]["over"]
    rows.append([f"{high} / {low}", "", "", "", f"**{_spread(b['ratio'], '.2f', '×')}**"])
    header = ["small hospitals", "records each", "training images", "cell wall time", "per training image"]
    return _table(header, rows)


def dp_ratio(root: Path) -> str:
    """DP-SGD against plain SGD per step and per full-scale cell, median [min–max] of the runs."""
    b = _json(root, "dp_ratio.json")
    rows = []
    for threads in sorted(b["step"], key=int):
        step, cell = b["step"][threads]["spread"], b["cell"][threads]["spread"]
        rows.append(
            [
                threads,
                f"{_spread(step['plain_ms'], '.1f')} / {_spread(step['dp_ms'], '.1f')}",
                f"**{_spread(step['ratio'], '.2f', '×')}**",
                f"{_spread(cell['plain_train_s'], '.0f', ' s')} / {_spread(cell['dp_train_s'], '.0f', ' s')}",
                f"**{_spread(cell['ratio_train'], '.2f', '×')}**",
                _spread(cell["ratio_wall"], ".2f", "×"),
            ]
        )
    header = [
        "threads",
        "one step, ms: plain / DP",
        "DP / plain, step",
        "cell training: plain / DP",
        "DP / plain, cell training",
        "DP / plain, cell wall",
    ]
    return _table(header, rows)


def dp_step(root: Path) -> str:
    """Milliseconds per step of one batch, and book-keeping's parts, at 1 and 2 threads."""
    runs = {t: _json(root, f"dp_step_{t}thread.json") for t in (1, 2)}
    rows = [[name, *(f"{runs[t]['ms_per_step'][name]:.2f}" for t in runs)] for name in runs[1]["ms_per_step"]]
    rows += [
        [f"{engine} / plain", *(f"{runs[t][f'{engine}_over_plain']:.2f}×" for t in runs)]
        for engine in ("bookkeeping", "hooks")
    ]
    return _table(["one step (B ≈ 64) or part of one", "ms, 1 thread", "ms, 2 threads"], rows)


def selection(root: Path) -> str:
    """Hyperparameter selection on validation splits: every candidate, the chosen one in bold."""
    df = _csv(root, "selection.csv")
    rows = [
        [
            r["family"],
            f"**{r['algorithm']}**" if r["chosen"] else r["algorithm"],
            _pm(r, 4),
        ]
        for _, r in df.iterrows()
    ]
    seeds = "/".join(str(n) for n in sorted(df["n"].unique()))
    return _table(["family", "key", f"small hospitals' AUPRC on validation (mean ± 95% CI, {seeds} seeds)"], rows)


REMEDY_METRICS = {"recall": "recall", "precision": "precision", "auroc": "AUROC", "auprc": "AUPRC"}


def _beside_fedavg(r: pd.Series, algorithm: str) -> str:
    """mean ± CI, and for a remedy its paired difference to FedAvg with that difference's CI."""
    text = _pm(r)
    if algorithm == "fedavg" or pd.isna(r["diff_mean"]):
        return text
    if pd.isna(r["diff_low"]):  # one pair: no interval
        return text + f" ({_signed(r['diff_mean'], 3)}, one pair)"
    return text + f" ({_signed(r['diff_mean'], 3)} [{_signed(r['diff_low'], 3)}, {_signed(r['diff_high'], 3)}])"


def _remedy_table(root: Path, file: str) -> str:
    """Small hospitals' mean per setting and algorithm: mean ± CI and, beside FedAvg's row,
    each remedy's paired difference to FedAvg with its 95% CI."""
    df = _csv(root, file)
    df = df[df["hospital_type"] == "small"]
    rows = []
    for (setting, algorithm), g in df.groupby(["setting", "algorithm"], sort=True):
        cells = [_beside_fedavg(_one(g, metric=metric), algorithm) for metric in REMEDY_METRICS]
        rows.append([setting, algorithm, *cells])
    return _table(["setting", "algorithm", *REMEDY_METRICS.values()], rows)


def fig8(root: Path) -> str:
    return _remedy_table(root, "fig8.csv")


def fig9(root: Path) -> str:
    return _remedy_table(root, "fig9.csv")


def fairness_fig8(root: Path) -> str:
    return _fairness_table(root, ".", 8)


def fairness_fig9(root: Path) -> str:
    return _fairness_table(root, ".", 9)


# (statistic, metric) columns of the fairness view: what the worst-off small hospital gets, how
# far apart the small hospitals end up, and what the large hospital gets
FAIRNESS_COLUMNS = {
    ("worst_small", "recall"): "worst small: recall",
    ("worst_small", "auprc"): "worst small: AUPRC",
    ("spread_small", "auprc"): "small spread: AUPRC",
    ("large", "auprc"): "large: AUPRC",
}


def _fairness_table(root: Path, directory: str, number: int) -> str:
    """A remedy figure's fairness view (tables/fairness_fig<n>.csv): mean ± CI over seeds and,
    beside each remedy, its paired difference to FedAvg with its 95% CI."""
    df = _csv(root, f"{directory}/fairness_fig{number}.csv")
    settings = _csv(root, f"{directory}/fig{number}.csv")[["scenario", "dp", "setting"]].drop_duplicates()
    df = df.merge(settings, on=["scenario", "dp"], validate="many_to_one")
    rows = []
    for (setting, algorithm), g in df.groupby(["setting", "algorithm"], sort=True):
        cells = [_beside_fedavg(_one(g, stat=stat, metric=metric), algorithm) for stat, metric in FAIRNESS_COLUMNS]
        rows.append([setting, algorithm, *cells])
    return _table(["setting", "algorithm", *FAIRNESS_COLUMNS.values()], rows)


# --- PneumoniaMNIST ---------------------------------------------------------------------------

PNEUMONIA = "pneumonia_mnist"  # its files under docs/results/
MODE_COLUMNS = {"federated": "federated", "local": "small only", "large_only": "large only"}


def _mode_means(root: Path, directory: str) -> dict[tuple[str, str], pd.Series]:
    """(mode, metric) → mean/ci of the small hospitals' metric on their own test splits."""
    out = {}
    for file, modes in (("table2.csv", ("federated", "local")), ("table3.csv", ("large_only",))):
        for _, r in _csv(root, f"{directory}/{file}").iterrows():
            for mode in modes:
                out[(mode, r["metric"])] = pd.Series(
                    {"mean": r[f"{mode}_mean"], "ci_low": r[f"{mode}_ci_low"], "ci_high": r[f"{mode}_ci_high"]}
                )
    return out


def _core(root: Path, directory: str, n_external: int) -> str:
    """The small hospitals per mode, on their own test splits and on the external set (the
    dataset's official test split, ``n_external`` images)."""
    own = _mode_means(root, directory)
    external = _csv(root, f"{directory}/external.csv")
    label = f"external ({n_external} images)"
    rows = []
    for metric in ("recall", "precision", "auroc", "auprc"):
        rows.append(["own test splits", METRIC_LABELS[metric]] + [_pm(own[(m, metric)]) for m in MODE_COLUMNS])
    for metric in ("recall", "precision", "auroc", "auprc"):
        rows.append([label, METRIC_LABELS[metric]] + [_pm(_one(external, mode=m, metric=metric)) for m in MODE_COLUMNS])
    return _table(["evaluated on", "metric", *MODE_COLUMNS.values()], rows)


def pneumonia_core(root: Path) -> str:
    return _core(root, PNEUMONIA, 624)


BREAST = "breast_mnist"  # its files under docs/results/


def breast_core(root: Path) -> str:
    return _core(root, BREAST, 156)


def breast_fig7(root: Path) -> str:
    return _privacy_figure(root, f"{BREAST}/fig7.csv")


def pneumonia_beside(root: Path) -> str:
    """The small hospitals' AUROC per mode: PneumoniaMNIST, FashionMNIST and the study."""
    pneumonia, fashion = _mode_means(root, PNEUMONIA), _mode_means(root, ".")
    study = {"federated": 0.993, "local": 0.967, "large_only": 0.970}  # the study's Tables 2–3
    rows = []
    for mode, label in MODE_COLUMNS.items():
        rows.append([label, _pm(pneumonia[(mode, "auroc")]), _pm(fashion[(mode, "auroc")]), f"{study[mode]:.3f}"])
    return _table(["small hospitals' AUROC", "PneumoniaMNIST (fedhet)", "FashionMNIST (fedhet)", "study"], rows)


PNEUMONIA_BUDGET_COLUMNS = (
    ("federated", "auroc", "federated AUROC"),
    ("federated", "recall", "federated recall"),
    ("large_only", "auroc", "large only AUROC"),
    ("large_only", "recall", "large only recall"),
    ("local", "auroc", "small only AUROC"),
)


def pneumonia_budget(root: Path) -> str:
    return _budget_table(root, f"{PNEUMONIA}/budget.csv", PNEUMONIA_BUDGET_COLUMNS, (1, 3, 6, 8, 10), _pm)


def pneumonia_fig7(root: Path) -> str:
    return _privacy_figure(root, f"{PNEUMONIA}/fig7.csv")


def pneumonia_fig6(root: Path) -> str:
    return _privacy_figure(root, f"{PNEUMONIA}/fig6.csv")


def pneumonia_fig12(root: Path) -> str:
    return _tuned_table(root, f"{PNEUMONIA}/fig6.csv", f"{PNEUMONIA}/fig12.csv")


def pneumonia_fig13(root: Path) -> str:
    return _tuned_table(root, f"{PNEUMONIA}/fig7.csv", f"{PNEUMONIA}/fig13.csv")


def pneumonia_fig8(root: Path) -> str:
    return _remedy_table(root, f"{PNEUMONIA}/fig8.csv")


def pneumonia_fig9(root: Path) -> str:
    return _remedy_table(root, f"{PNEUMONIA}/fig9.csv")


def pneumonia_fairness_fig8(root: Path) -> str:
    return _fairness_table(root, PNEUMONIA, 8)


def pneumonia_fairness_fig9(root: Path) -> str:
    return _fairness_table(root, PNEUMONIA, 9)


def pneumonia_fig11(root: Path) -> str:
    return _privacy_figure(root, f"{PNEUMONIA}/fig11.csv")


def pneumonia_fig10(root: Path) -> str:
    df = _csv(root, f"{PNEUMONIA}/fig10.csv")
    severities = sorted(df["x"].unique())
    header = ["evaluated on", "metric", "mode"] + [f"severity {x}" if x else "no shift" for x in severities]
    rows = []
    small = df[df["group"] == "small hospitals (mean)"]  # the shifted ones; the large hospital's scanner is unchanged
    for metric in ("recall", "auroc", "auprc"):
        for mode, label in MODE_COLUMNS.items():
            part = small[(small["metric"] == metric) & (small["mode"] == mode)]
            rows.append([METRIC_LABELS[metric], label] + [_pm(_one(part, x=x)) for x in severities])
    return _table(header[1:], rows)


# --- many hospitals (Figures 14-15) ----------------------------------------------------------

MANY = "many_hospitals"


def many_hospitals(root: Path) -> str:
    """Per grid and number of small hospitals N: the small hospitals' mean recall and AUROC and
    the large hospital's AUROC without DP and under client-level DP, and the noise std per
    coordinate of the released mean, σS/m with m = ⌈C·K⌉ the public denominator."""
    header = [
        "grid",
        "N small",
        "records each",
        "recall, small mean: no DP",
        "client-level DP",
        "AUROC, small mean: no DP",
        "client-level DP",
        "AUROC, large: no DP",
        "client-level DP",
        "noise on the mean (σS/m)",
    ]
    rows = []
    for number, grid in ((14, "fixed total"), (15, "fixed size")):
        df = _csv(root, f"{MANY}/fig{number}.csv")
        privacy = _csv(root, f"{MANY}/privacy_fig{number}.csv")
        private = privacy[privacy["private"]]
        dp = next(d for d in df["dp"].unique() if d != "nodp")
        for n in sorted(df["x"].unique()):
            cells = [grid, f"{n}"]
            scenario = next(sc for sc in private["scenario"].unique() if f"-small{n}x" in sc)
            cells.append(scenario.split(f"-small{n}x")[1].split("r")[0])
            for metric, group in (("recall", SMALL), ("auroc", SMALL), ("auroc", "large hospital")):
                for setting in ("nodp", dp):
                    cells.append(_pm(_one(df, x=n, metric=metric, group=group, dp=setting)))
            row = private[private["scenario"] == scenario].iloc[0]
            fraction = float(row["q"])
            denominator = max(1, int(np.ceil(fraction * (n + 1) - 1e-9)))
            cells.append(f"{row['sigma'] * row['max_grad_norm'] / denominator:.3f}")
            rows.append(cells)
    return _table(header, rows)


BLOCKS: dict[str, Callable[[Path], str]] = {
    "table2": table2,
    "table3": table3,
    "budget": budget,
    "trends": trends,
    "count_vs_size": count_vs_size,
    "fig6": fig6,
    "fig7": fig7,
    "fig11": fig11,
    "fig12": fig12,
    "fig13": fig13,
    "privacy_spent": privacy_spent,
    "audit": audit,
    "engine_audit": engine_audit,
    "peers": peers,
    "grid": grid,
    "cost": cost,
    "speed": speed,
    "gpu": gpu,
    "dp_ratio": dp_ratio,
    "many_cost": many_cost,
    "dp_step": dp_step,
    "selection": selection,
    "fig8": fig8,
    "fig9": fig9,
    "fairness_fig8": fairness_fig8,
    "fairness_fig9": fairness_fig9,
    "many_hospitals": many_hospitals,
    "breast_core": breast_core,
    "breast_fig7": breast_fig7,
    "pneumonia_core": pneumonia_core,
    "pneumonia_fig6": pneumonia_fig6,
    "pneumonia_fig12": pneumonia_fig12,
    "pneumonia_fig13": pneumonia_fig13,
    "pneumonia_beside": pneumonia_beside,
    "pneumonia_budget": pneumonia_budget,
    "pneumonia_fig7": pneumonia_fig7,
    "pneumonia_fig10": pneumonia_fig10,
    "pneumonia_fig8": pneumonia_fig8,
    "pneumonia_fig9": pneumonia_fig9,
    "pneumonia_fairness_fig8": pneumonia_fairness_fig8,
    "pneumonia_fairness_fig9": pneumonia_fairness_fig9,
    "pneumonia_fig11": pneumonia_fig11,
}


# --- prose numbers outside the blocks --------------------------------------------------------
# Each returns a phrase that README.md or a page under docs/ must contain (compared with runs of
# whitespace collapsed, so reflowing a page's lines does not matter).


def _t(root: Path, file: str, metric: str, mode: str) -> str:
    return f"{_one(_csv(root, file), metric=metric)[f'{mode}_mean']:.3f}"


def prose_federated_vs_small(root: Path) -> str:
    def t(metric: str, mode: str) -> str:
        return _t(root, "table2.csv", metric, mode)

    recall = f"recall {t('recall', 'federated')} vs {t('recall', 'local')}"
    return f"{recall}, AUROC {t('auroc', 'federated')} vs {t('auroc', 'local')}"


def prose_large_only(root: Path) -> str:
    def t(metric: str, mode: str) -> str:
        return _t(root, "table3.csv", metric, mode)

    fed, lone = t("auroc", "federated"), t("auroc", "large_only")
    auroc = f"AUROC {fed} for both" if fed == lone else f"AUROC {lone} vs {fed}"
    return (
        f"{auroc}, recall {t('recall', 'large_only')} vs {t('recall', 'federated')}, "
        f"and precision {t('precision', 'large_only')} vs {t('precision', 'federated')}"
    )


def prose_budget(root: Path) -> str:
    df = _csv(root, "budget.csv")
    df = df[df["dp"] == "nodp"]

    def m(mode: str, metric: str, rnd: int) -> float:
        return _one(df, mode=mode, metric=metric, round=rnd)["mean"]

    last = int(df["round"].max())
    early = sorted({f"{m('large_only', 'precision', r):.2f}" for r in (1, 2)})
    return (
        f"({m('local', 'recall', 1):.2f} → {m('local', 'recall', last):.2f} over {last} epochs). Federated training "
        f"reaches {m('federated', 'recall', 2):.2f} after 2 rounds. The large-only model's precision at the small "
        f"hospitals starts much nearer the study's value ({'–'.join(early)} after 1–2 rounds)"
    )


def prose_sweep_endpoints(root: Path) -> str:
    df = _csv(root, "fig3.csv")
    df = df[
        (df["curve"] == "small hospitals (mean)") & (df["metric"] == "recall") & (df["small.abnormal_ratio"] == 0.1)
    ]
    return f"(e.g. {_pm(_one(df, x=0.1))} → {_pm(_one(df, x=0.5))} with the small hospitals at 10%)"


def _trends(root: Path, experiment: str, metric: str) -> pd.DataFrame:
    df = _csv(root, "trends.csv")
    return df[(df["dp"] == "nodp") & (df["experiment"] == experiment) & (df["metric"] == metric)]


def _passing(rows: pd.DataFrame) -> int:
    return int(rows["verdict"].isin(["rises", "falls"]).sum())


def _unadjusted(rows: pd.DataFrame) -> int:
    return int((rows["p_value"] < 0.05).sum())


def _seed_signs(root: Path, experiment: str, metric: str) -> str:
    """'positive' or 'negative' where every seed's slope of every such curve has that sign."""
    points = _csv(root, "trend_points.csv")
    points = points[(points["dp"] == "nodp") & (points["experiment"] == experiment) & (points["metric"] == metric)]
    keys = ["curve", "small.abnormal_ratio", "seed"]
    slopes = [np.polyfit(g["x_value"], g["value"], 1)[0] for _, g in points.groupby(keys)]
    if all(x > 0 for x in slopes):
        return "positive"
    if all(x < 0 for x in slopes):
        return "negative"
    raise ValueError(f"{experiment} {metric}: the seeds' slopes differ in sign")


def prose_trend_recall(root: Path) -> list[str]:
    size = _trends(root, "fixed_size", "recall")
    return [
        (
            f"The slope is {_seed_signs(root, 'fixed_size', 'recall')} in every seed on all {len(size)}\nrecall curves"
            f" (the small hospitals' mean and the large hospital, at each small-hospital ratio),\nabout "
            f"{_signed(size['slope_per_10pp'].mean(), 3)} per 10 points"
        ),
        (
            f"{_unadjusted(size)} of the {len(size)} recall curves have p below 0.05 before correction and\n"
            f"{_passing(size)} pass the Holm-corrected test"
        ),
    ]


def prose_trend_auroc(root: Path) -> list[str]:
    size = _trends(root, "fixed_size", "auroc")
    count = _trends(root, "fixed_count", "auroc")
    f5 = _csv(root, "fig5.csv")
    f5 = f5[f5["metric"] == "auroc"]
    lo, hi = (f5[f5["x"] == x]["mean"] for x in (f5["x"].min(), f5["x"].max()))
    return [
        (
            f"(slopes ≤ {size['slope_per_10pp'].max():.4f} per 10 points, {_seed_signs(root, 'fixed_size', 'auroc')} in"
            f" every seed;\n{_passing(size)} of {len(size)} curves pass the test). At a fixed count the slope is"
            f" {_seed_signs(root, 'fixed_count', 'auroc')} in every seed on all {len(count)}\ncurves, about "
            f"{_signed(count['slope_per_10pp'].mean(), 3)} per 10 points ({lo.min():.3f}–{lo.max():.3f} → "
            f"{hi.min():.3f}–{hi.max():.3f})"
        ),
        (
            f"{_unadjusted(count)} of {len(count)} have p below 0.05 before correction and {_passing(count)} pass the"
            f" Holm-corrected\ntest"
        ),
    ]


def _fig(root: Path, file: str, group: str, metric: str, placement: str, mode: str = "federated") -> pd.DataFrame:
    df = _csv(root, file)
    return df[(df["group"] == group) & (df["metric"] == metric) & (df["placement"] == placement) & (df["mode"] == mode)]


def _by_eps(*args) -> pd.Series:
    """Means by finite ε (the clipping-only control, ε = ∞, is ``_clip_only``)."""
    means = _fig(*args).set_index("epsilon")["mean"]
    return means[np.isfinite(means.index)]


def _clip_only(root: Path, file: str, group: str, metric: str, placement: str, mode: str = "federated") -> float:
    curve = _fig(root, file, group, metric, placement, mode)
    return float(curve.loc[~np.isfinite(curve["epsilon"]), "mean"].iloc[0])


def prose_dp_everywhere(root: Path) -> str:
    small, large = "small hospitals (mean)", "large hospital"

    def curves(group: str, metric: str) -> tuple[pd.Series, pd.Series]:
        """Federated and large-only, both with DP at every hospital, by ε."""
        return tuple(_by_eps(root, "fig6.csv", group, metric, "all", mode) for mode in ("federated", "large_only"))

    fed, lone = curves(small, "recall")
    fed_l, lone_l = curves(large, "recall")
    fed_a, lone_a = curves(small, "auroc")
    auroc = sorted({f"{fed_a[e]:.3f} vs {lone_a[e]:.3f}" for e in (1, 10)})
    return (
        f"is {fed[1]:.3f} / {fed[10]:.3f} against {lone[1]:.3f} / {lone[10]:.3f} for the large hospital training "
        f"alone under the same ε (at the large hospital: {fed_l[1]:.3f} vs {lone_l[1]:.3f}). AUROC is equal within "
        f"the intervals ({' / '.join(auroc)})"
    )


def prose_clipping_cost(root: Path) -> str:
    """Figure 6's split of DP's cost: no DP → clipping only → DP, at the small hospitals."""
    small = "small hospitals (mean)"
    none = {m: _fig(root, "fig6.csv", small, m, "none")["mean"].iloc[0] for m in ("recall", "auroc")}
    clip = {m: _clip_only(root, "fig6.csv", small, m, "all") for m in ("recall", "auroc")}
    dp = _by_eps(root, "fig6.csv", small, "recall", "all")
    high = dp[dp.index >= 0.5]
    return (
        f"clipping alone already takes the small hospitals' recall from {none['recall']:.3f} to {clip['recall']:.3f}"
        f" and AUROC from {none['auroc']:.3f} to {clip['auroc']:.3f}; with noise at ε ≥ 0.5 recall is"
        f" {high.min():.3f}–{high.max():.3f}, and only at ε = 0.2 and 0.1 does it fall further"
        f" ({dp[0.2]:.3f} and {dp[0.1]:.3f})"
    )


def prose_sigma(root: Path) -> str:
    df = _privacy_rows(root)
    df = df[df["private"].astype(bool) & np.isfinite(df["epsilon_target"])]
    large = df[df["hospital"].str.startswith("large")].groupby("epsilon_target")[["sigma", "q", "steps"]].first()
    small = df[df["hospital"].str.startswith("small")].groupby("epsilon_target")[["sigma", "q", "steps"]].first()
    ratio = small["sigma"] / large["sigma"]
    return (
        f"(q = 1/{1 / small['q'].iloc[0]:.0f}, {small['steps'].iloc[0]:,.0f} steps) needs "
        f"{ratio.min():.1f}–{ratio.max():.1f}× the large hospital's noise multiplier "
        f"(q = 1/{1 / large['q'].iloc[0]:.0f}, {large['steps'].iloc[0]:,.0f} steps) for the same ε "
        f"(ε = 1: σ = {small.loc[1.0, 'sigma']:.2f} vs {large.loc[1.0, 'sigma']:.2f})"
    )


def _tuned_small(
    root: Path, file: str, metric: str, placement: str, epsilon: float | None = None, tuning: str | None = None
) -> float:
    """The small hospitals' mean ``metric`` of one setting in a privacy figure's CSV (of one way of
    tuning, in a tuned figure that holds several)."""
    df = _csv(root, file)
    where = {"group": SMALL, "metric": metric, "placement": placement, "mode": "federated"}
    if epsilon is not None:
        where["epsilon"] = epsilon
    if tuning is not None:
        where["tuning"] = tuning
    return float(_one(df, **where)["mean"])


def _charge(root: Path, file: str, dp: str) -> pd.Series:
    """One small hospital's row of a federated cell's tuning charge (every small hospital is
    charged alike)."""
    df = _csv(root, file)
    rows = df[(df["dp"] == dp) & (df["mode"] == "federated") & df["hospital"].str.startswith("small")]
    if rows.empty or rows["epsilon_total"].round(6).nunique() != 1:
        raise ValueError(f"{file}: expected one charge for the small hospitals at {dp}")
    return rows.iloc[0]


def prose_many_hospitals(root: Path) -> list[str]:
    """Figures 14-15: client-level DP against N, and (from the participation table) what the
    no-DP cells got with and without the large hospital drawn into a round."""

    def dp_auroc(number: int, n: int) -> float:
        df = _csv(root, f"{MANY}/fig{number}.csv")
        dp = next(d for d in df["dp"].unique() if d != "nodp")
        return float(_one(df, x=n, metric="auroc", group=SMALL, dp=dp)["mean"])

    def dp_recall(number: int, n: int) -> pd.Series:
        df = _csv(root, f"{MANY}/fig{number}.csv")
        dp = next(d for d in df["dp"].unique() if d != "nodp")
        return _one(df, x=n, metric="recall", group=SMALL, dp=dp)

    part = pd.concat([_csv(root, f"{MANY}/participation_fig{number}.csv") for number in (14, 15)])
    part = part[part["dp"] == "nodp"]
    large = part[part["hospital_type"] == "large"].set_index(["scenario", "seed"])
    small = part[part["hospital_type"] == "small"].set_index(["scenario", "seed"])
    small = small.assign(large_drawn=large["rounds_drawn"] > 0)
    layout = [re.search(r"-small(\d+)x(\d+)r", sc).groups() for sc in small.index.get_level_values("scenario")]
    small["n"], small["each"] = [int(n) for n, _ in layout], [int(each) for _, each in layout]
    # the two figures' layouts at one N share their draws (4 x 3,000 and 4 x 100, say): count
    # each (N, seed) once
    draws = small.reset_index().drop_duplicates(["n", "seed"])
    missed = small[~small["large_drawn"]]
    few, many = missed[missed["each"] <= 188], missed[missed["each"] >= 750]["recall"]
    drawn = small[small["large_drawn"]]["recall"]
    few_recall = "0" if (few["recall"] == 0).all() else f"{few['recall'].min():.2f}–{few['recall'].max():.2f}"
    zero_recall = all(dp_recall(number, 256)["mean"] == 0 for number in (14, 15))
    return [
        f"AUROC rises from {dp_auroc(14, 4):.3f} at N = 4 (near chance) to {dp_auroc(14, 64):.3f} at N = 64 with a"
        f" fixed total of records ({dp_auroc(15, 64):.3f} at a fixed size each), then falls back at N = 256"
        f" ({dp_auroc(14, 256):.3f} and {dp_auroc(15, 256):.3f}), where recall is {'0' if zero_recall else 'above 0'}",
        f"in no round in {int((~draws['large_drawn']).sum())} of the {len(draws)} (N, seed) draws",
        f"recall is {few_recall} where each holds {few['each'].min()} to {few['each'].max()} records and"
        f" {many.min():.2f}–{many.max():.2f} where they hold 750 or 3,000; with the large hospital drawn at least"
        f" once it is {drawn.min():.2f}–{drawn.max():.2f}",
    ]


def prose_pneumonia_large_alone(root: Path) -> list[str]:
    """Figures 6 and 12 on PneumoniaMNIST: the small hospitals' metrics, federated against the
    large hospital alone, both with DP at every hospital that trains."""

    def m(number: int, mode: str, metric: str, epsilon: float, tuning: str = "fixed") -> float:
        df = _csv(root, f"{PNEUMONIA}/fig{number}.csv")
        where = {"group": SMALL, "mode": mode, "placement": "all", "metric": metric, "epsilon": epsilon}
        return float(_one(df[df["tuning"] == tuning], **where)["mean"])

    fed, alone = "federated", "large_only"

    def pair(number: int, metric: str, epsilon: float, tuning: str = "fixed") -> tuple[float, float]:
        return m(number, fed, metric, epsilon, tuning), m(number, alone, metric, epsilon, tuning)

    auroc, recall = pair(6, "auroc", 1), pair(6, "recall", 1)
    tuned = {(metric, e): pair(12, metric, e, "public") for metric in ("auroc", "recall") for e in (1, 10)}
    return [
        f"at ε = 1 the large hospital's own model gives them AUROC {auroc[1]:.3f} and recall {recall[1]:.3f},"
        f" the federation {auroc[0]:.3f} and {recall[0]:.0f}",
        f"AUROC at ε = 1 ({tuned['auroc', 1][0]:.3f} against {tuned['auroc', 1][1]:.3f}) but not in recall"
        f" ({tuned['recall', 1][0]:.3f} against {tuned['recall', 1][1]:.3f})",
        f"level in AUROC ({tuned['auroc', 10][0]:.3f} and {tuned['auroc', 10][1]:.3f}) and the large hospital alone"
        f" still flags more cases (recall {tuned['recall', 10][1]:.3f} against {tuned['recall', 10][0]:.3f})",
    ]


def prose_pneumonia_tuned(root: Path) -> list[str]:
    """Figure 13 on PneumoniaMNIST, DP at every hospital at ε = 1: fixed, tuned on public proxies,
    tuned on the hospitals' validation splits (and what that choice is charged)."""
    fig = f"{PNEUMONIA}/fig13.csv"

    def m(metric: str, tuning: str, placement: str = "all", epsilon: float | None = 1.0) -> float:
        return _tuned_small(root, fig, metric, placement, epsilon, tuning)

    charge = {e: _charge(root, f"{PNEUMONIA}/tuning_charge.csv", f"all-eps{e}-delta1e-05-clip1") for e in (1, 10)}
    return [
        f"from {m('auroc', 'fixed'):.3f} to {m('auroc', 'public'):.3f} at ε = 1 and recall from"
        f" {m('recall', 'fixed'):.0f} to {m('recall', 'public'):.3f}, against a baseline tuned the same way of"
        f" {m('auroc', 'public', 'none', None):.3f} / {m('recall', 'public', 'none', None):.3f}",
        f"stays at the baseline (AUROC {m('auroc', 'public', 'small_hospitals'):.3f} at ε = 1)",
        f"sits with the private curves ({m('auroc', 'public', 'all', np.inf):.3f})",
        f"recall stays {m('recall', 'validation'):.0f} and AUROC at {m('auroc', 'validation'):.3f}",
        f"{charge[1]['candidates']} candidate trainings and the noised score bring each small hospital's ε to"
        f" {charge[1]['epsilon_total']:.2f} for a training at ε = 1 ({charge[10]['epsilon_total']:.1f} at ε = 10)",
    ]


def _fixed_gap(root: Path, metric: str) -> float:
    """The largest difference in ``metric`` between a tuned figure's fixed column (Figures 12-13)
    and the committed figure it retrains (Figures 6-7), over every curve, ε and group."""
    keys = ["mode", "placement", "epsilon", "metric", "group"]
    gaps = []
    for fixed, tuned in (("fig6.csv", "fig12.csv"), ("fig7.csv", "fig13.csv")):
        new = _csv(root, tuned)
        both = _csv(root, fixed).merge(new[new["tuning"] == "fixed"], on=keys, suffixes=("", "_new"))
        if len(both) != len(_csv(root, fixed)):
            raise ValueError(f"{tuned}: its fixed column lacks settings of {fixed}")
        gaps.append((both["mean"] - both["mean_new"]).abs()[both["metric"] == metric].max())
    return max(gaps)


def prose_fashion_tuned(root: Path) -> list[str]:
    """Figures 12-13 on FashionMNIST, small hospitals' means: fixed, tuned on public proxies,
    tuned on validation splits (and what that choice is charged)."""

    def m(metric: str, tuning: str, placement: str = "all", epsilon: float | None = 1.0) -> str:
        return f"{_tuned_small(root, 'fig13.csv', metric, placement, epsilon, tuning):.3f}"

    def large(metric: str) -> str:
        df = _csv(root, "fig12.csv")
        where = {"group": SMALL, "metric": metric, "placement": "all", "mode": "large_only", "epsilon": 1.0}
        return f"{_one(df[df['tuning'] == 'public'], **where)['mean']:.3f}"

    charge = _charge(root, "tuning_charge.csv", "all-eps1-delta1e-05-clip0.1")
    charges = _csv(root, "tuning_charge.csv")
    large_charge = _one(charges, dp=charge["dp"], mode="federated", seed=0, hospital="large_1")["epsilon_total"]
    rows = pd.concat([_csv(root, f"privacy_fig{n}.csv") for n in (12, 13)])
    keys = ["scenario", "mode", "dp", "optim", "seed", "hospital"]
    private = rows[rows["private"].astype(bool) & np.isfinite(rows["epsilon_target"])].drop_duplicates(subset=keys)
    spent = private["epsilon_spent"] / private["epsilon_target"]
    inf = np.inf
    return [
        f"differ by at most {_fixed_gap(root, 'recall'):.4f} in recall and {_fixed_gap(root, 'auroc'):.4f} in AUROC",
        f"reaches recall {m('recall', 'public', 'all', inf)} and AUROC {m('auroc', 'public', 'all', inf)} with lr = 0.1"
        f" and C = 1 (fixed: {m('recall', 'fixed', 'all', inf)} and {m('auroc', 'fixed', 'all', inf)}; the no-DP"
        f" baseline tuned the same way: {m('recall', 'public', 'none', None)} and"
        f" {m('auroc', 'public', 'none', None)})",
        f"recall {m('recall', 'public')} (fixed {m('recall', 'fixed')}) and AUROC {m('auroc', 'public')}"
        f" ({m('auroc', 'fixed')})",
        f"the noise (recall {m('recall', 'public')} vs the tuned control's {m('recall', 'public', 'all', inf)})",
        f"federated {m('recall', 'public')} against large-only {large('recall')} at ε = 1, and AUROC"
        f" {m('auroc', 'public')} against {large('auroc')}",
        f"recall {m('recall', 'public', 'small_hospitals')} and AUROC"
        f" {m('auroc', 'public', 'small_hospitals')} at ε = 1",
        f"recall {m('recall', 'validation')} and AUROC {m('auroc', 'validation')}",
        f"{charge['candidates']} candidate trainings and the noised score bring each small hospital's ε to"
        f" {charge['epsilon_total']:.2f} for a training at ε = 1 (the large hospital's to {large_charge:.2f})",
        f"Each of the {len(private)} private hospital trainings at a finite ε",
        f"spent between {spent.min():.1%} and {spent.max():.1%} of its training ε",
    ]


NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def prose_fedavg_weight(root: Path) -> str:
    t1 = _csv(root, "table1.csv")
    n = t1["n_train"].sum()
    small = t1.loc[t1["type"] == "small", "n_train"]
    count = NUMBER_WORDS.get(len(small), str(len(small)))
    return f"with weight {small.iloc[0] / n:.3f} (the {count} small hospitals together: {small.sum() / n:.2f})"


def prose_dp_small_hospitals(root: Path) -> str:
    small = "small hospitals (mean)"
    so = _by_eps(root, "fig7.csv", small, "recall", "small_hospitals")
    ref = _fig(root, "fig7.csv", small, "recall", "none")["mean"].iloc[0]
    so_auroc = sorted({f"{v:.3f}" for v in _fig(root, "fig7.csv", small, "auroc", "small_hospitals")["mean"]})
    everywhere = _fig(root, "fig7.csv", small, "recall", "all")["mean"]
    auroc = _fig(root, "fig7.csv", small, "auroc", "all")["mean"]
    eps = " / ".join(f"{e:g}" for e in so.index)
    return (
        f"{' / '.join(f'{v:.3f}' for v in so)} at ε = {eps} against {ref:.3f} without DP, and AUROC stays at "
        f"{'–'.join(so_auroc)}; with DP at every hospital recall drops to {everywhere.min():.3f}–"
        f"{everywhere.max():.3f} and AUROC to {auroc.min():.3f}–{auroc.max():.3f}"
    )


def prose_fedper_recall(root: Path) -> str:
    df = _csv(root, "fig8.csv")
    df = df[(df["hospital_type"] == "small") & (df["algorithm"] == "fedper-head1") & (df["metric"] == "recall")]
    by_ratio = df.set_index("scenario")["diff_mean"]
    at = {s.rsplit("r", 1)[-1]: v for s, v in by_ratio.items()}
    return f"costs recall: {_signed(at['0.1'], 3)} at 10% and {_signed(at['0.05'], 3)} at 5%"


def prose_dp_cost(root: Path) -> list[str]:
    b = _json(root, "dp_ratio.json")
    step, cell = (b[kind]["1"]["spread"] for kind in ("step", "cell"))
    two = b["cell"]["2"]["spread"]
    return [
        f"costs {step['ratio']['median']:.2f}× plain SGD per step and {cell['ratio_train']['median']:.2f}× per cell"
        f" in training time at one thread ({two['ratio_train']['median']:.2f}× at two)",
    ]


def prose_dp_profile(root: Path) -> list[str]:
    ms = _json(root, "dp_step_1thread.json")["ms_per_step"]
    conv2 = "Conv2d (32, 16, 5, 5)"
    norms = sum(v for k, v in ms.items() if k.endswith("per-example norms") and k.startswith("Conv2d"))
    patches = sum(v for k, v in ms.items() if k.endswith(": patches"))
    parts = sum(v for k, v in ms.items() if k.endswith(("patches", "per-example norms", "clipped sum", "(ghost norm)")))
    backward = ms["forward + backward to layer outputs"] - ms["forward"]
    return [
        f"costs about {ms['plain'] - ms['forward']:.1f} ms ({ms['plain']:.1f} − {ms['forward']:.1f} ms forward)."
        f" Book-keeping's backward pass to the layer outputs costs {backward:.1f} ms",
        f"costs {norms:.1f} ms: 63 small products",
        f"patches costs another {patches:.1f} ms",
        f"The second convolution alone takes {ms[f'{conv2}: per-example norms']:.1f}"
        f" + {ms[f'{conv2}: patches']:.1f} ms",
        f"therefore cost only about {ms['plain'] - ms['forward'] - backward:.1f} ms",
        f"The remaining {ms['bookkeeping'] - ms['forward + backward to layer outputs'] - parts:.1f} ms per step",
    ]


def prose_shared_under_dp(root: Path) -> list[str]:
    df = _csv(root, "fig9.csv")
    df = df[(df["hospital_type"] == "small") & (df["algorithm"] == "shared-beta0.1-alpha1")]
    auprc = df[df["metric"] == "auprc"].set_index("dp")["diff_mean"]
    fedavg = _csv(root, "fig9.csv")
    fedavg = fedavg[(fedavg["hospital_type"] == "small") & (fedavg["algorithm"] == "fedavg")]
    dp1 = "all-eps1-delta1e-05-clip1"
    nodp = _csv(root, "fig8.csv")
    nodp = _one(
        nodp[nodp["scenario"] == fedavg["scenario"].iloc[0]], hospital_type="small", algorithm="fedavg", metric="auprc"
    )
    dp_auprc = _one(fedavg, metric="auprc", dp=dp1)
    return [
        f"AUPRC by {_signed(auprc[dp1], 3)} at ε = 1 and {_signed(auprc['all-eps10-delta1e-05-clip1'], 3)} at ε = 10",
        f"({nodp['mean']:.3f} → {dp_auprc['mean']:.3f} at ε = 1)",
    ]


def prose_selection(root: Path) -> list[str]:
    df = _csv(root, "selection.csv").set_index("algorithm")["mean"]
    return [
        f"(μ = 1: AUPRC {df['fedprox-mu1']:.3f})",
        f"more so with two personal layers ({df['fedper-head2']:.3f}) than one ({df['fedper-head1']:.3f})",
        f"SCAFFOLD at η_g = 2 ({df['scaffold-eta2']:.3f}), Per-FedAvg at α = 0.1 ({df['perfedavg-alpha0.1']:.3f}),"
        f" q-FFL at q ≥ 1 ({df['qffl-q1']:.3f} at q = 1)",
    ]


def prose_pneumonia_answer(root: Path) -> list[str]:
    own = _mode_means(root, PNEUMONIA)
    external = _csv(root, f"{PNEUMONIA}/external.csv")

    def ext(mode: str) -> str:
        return _pm(_one(external, mode=mode, metric="auroc"))

    fed, large = _pm(own[("federated", "auroc")]), _pm(own[("large_only", "auroc")])
    return [
        f"{fed} against {large} for the large hospital's own model",
        f"(AUROC {ext('federated')} vs {ext('large_only')})",
        f"(recall {_pm(own[('federated', 'recall')])} vs {_pm(own[('large_only', 'recall')])})",
    ]


def prose_pneumonia_dp(root: Path) -> list[str]:
    fig7 = _csv(root, f"{PNEUMONIA}/fig7.csv")
    clip = fig7[fig7["reference"] & (fig7["placement"] == "all") & (fig7["group"] == "small hospitals (mean)")]
    privacy = _csv(root, f"{PNEUMONIA}/privacy_fig7.csv")
    private = privacy[privacy["private"].astype(bool) & np.isfinite(privacy["epsilon_target"])]
    share = private["epsilon_spent"] / private["epsilon_target"]
    large = private[private["hospital"] == "large_1"].groupby("epsilon_target")["sigma"].first()
    return [
        f"(small hospitals' AUROC {_pm(_one(clip, metric='auroc'))})",
        f"σ falls from {large.iloc[0]:.1f} at ε = {large.index[0]:g}"
        f" to {large.iloc[-1]:.2f} at ε = {large.index[-1]:g}",
        f"Each of the {len(private)} private hospital trainings",
        f"spent between {share.min():.1%} and {share.max():.1%} of its ε",
    ]


def _paired(r: pd.Series) -> str:
    """A paired difference to FedAvg with its 95% CI: ``+0.175 [−0.064, +0.414]``."""
    return f"{_signed(r['diff_mean'], 3)} [{_signed(r['diff_low'], 3)}, {_signed(r['diff_high'], 3)}]"


def _fair(root: Path, number: int, algorithm: str, stat: str, metric: str, shift: str = "", eps: str = "") -> pd.Series:
    """One row of a PneumoniaMNIST fairness view: core layout (or ``shift``), no DP (or ``eps``)."""
    df = _csv(root, f"{PNEUMONIA}/fairness_fig{number}.csv")
    core = next(sc for sc in df["scenario"].unique() if "_" not in sc)
    dp = next(d for d in df["dp"].unique() if d.startswith(f"all-eps{eps}-")) if eps else "nodp"
    return _one(df, scenario=f"{core}_{shift}" if shift else core, dp=dp, algorithm=algorithm, stat=stat, metric=metric)


def prose_pneumonia_remedies(root: Path) -> list[str]:
    """Figures 8-9 on PneumoniaMNIST read through their fairness views."""
    pfa, ifca, scaffold = "perfedavg-alpha0.0001", "ifca-k2", "scaffold-eta1"

    def worst(algorithm: str, metric: str = "recall", shift: str = "") -> pd.Series:
        return _fair(root, 8, algorithm, "worst_small", metric, shift)

    cost = {sh: _fair(root, 8, pfa, "large", "auprc", sh) for sh in ("", "blur4")}
    cost_text = " and ".join(sorted({_paired(c) for c in cost.values()}))

    def dp_worst(algorithm: str, eps: str) -> pd.Series:
        return _fair(root, 9, algorithm, "worst_small", "recall", eps=eps)

    ditto = "ditto-lam10-rho0.1"
    return [
        f"its recall changes by {_paired(worst(pfa))} at the core layout and by {_paired(worst(pfa, shift='blur4'))}"
        f" with blurred scans, against FedAvg's {worst('fedavg')['mean']:.3f}, for {cost_text} AUPRC at the large"
        f" hospital",
        f"recall {_paired(worst(ifca))}, AUPRC {_paired(worst(ifca, 'auprc'))}",
        f"AUPRC at the worst-off small hospital {_paired(worst(scaffold, 'auprc'))}, at the large one"
        f" {_paired(_fair(root, 8, scaffold, 'large', 'auprc'))}",
        f"at ε = 1: Per-FedAvg {_paired(dp_worst(pfa, '1'))}, SCAFFOLD {_paired(dp_worst(scaffold, '1'))}",
        f"Ditto, its personal models at lr 0.01, {_paired(dp_worst(ditto, '1'))} at ε = 1 and"
        f" {_paired(dp_worst(ditto, '10'))} at ε = 10",
    ]


def prose_fashion_remedies(root: Path) -> list[str]:
    """Figures 8-9 on FashionMNIST read through their tables and fairness views."""
    ditto, pfa, scaffold, qffl = "ditto-lam1", "perfedavg-alpha0.0001", "scaffold-eta1", "qffl-q0.1"
    shared, fedper, ditto_dp = "shared-beta0.1-alpha1", "fedper-head1", "ditto-lam1-rho0.33"

    def scenario(df: pd.DataFrame, ratio: str) -> str:
        return next(sc for sc in df["scenario"].unique() if sc.endswith(f"r{ratio}"))

    def small(algorithm: str, metric: str, ratio: str = "0.1") -> pd.Series:
        df = _csv(root, "fig8.csv")
        return _one(df, scenario=scenario(df, ratio), hospital_type="small", algorithm=algorithm, metric=metric)

    def fair(number: int, algorithm: str, stat: str, metric: str, ratio: str = "0.1", eps: str = "") -> pd.Series:
        df = _csv(root, f"fairness_fig{number}.csv")
        dp = next(d for d in df["dp"].unique() if d.startswith(f"all-eps{eps}-")) if eps else "nodp"
        return _one(df, scenario=scenario(df, ratio), dp=dp, algorithm=algorithm, stat=stat, metric=metric)

    def both(stat: str, algorithm: str, metric: str, number: int = 8) -> str:
        if number == 8:
            at = [fair(8, algorithm, stat, metric, ratio) for ratio in ("0.1", "0.05")]
            return f"{_paired(at[0])} at 10% and {_paired(at[1])} at 5%"
        at = [fair(9, algorithm, stat, metric, eps=eps) for eps in ("1", "10")]
        return f"{_paired(at[0])} at ε = 1 and {_paired(at[1])} at ε = 10"

    return [
        f"(precision {_paired(small(ditto, 'precision'))}, recall {_paired(small(ditto, 'recall'))})",
        f"AUPRC falls by {both('worst_small', qffl, 'auprc')}, and the large hospital's by"
        f" {both('large', qffl, 'auprc')}",
        f"(SCAFFOLD {_paired(fair(8, scaffold, 'worst_small', 'recall'))}, Per-FedAvg"
        f" {_paired(fair(8, pfa, 'worst_small', 'recall'))}, Ditto {_paired(fair(8, ditto, 'worst_small', 'recall'))}",
        f"also lowers AUPRC at 5% ({_paired(small(pfa, 'auprc', '0.05'))})",
        f"worst-off small hospital AUPRC {fair(8, 'fedavg', 'worst_small', 'auprc')['mean']:.3f} at 10%",
        f"precision {small('fedavg', 'precision')['mean']:.3f} here against "
        f"{_one(_csv(root, 'table2.csv'), metric='precision')['federated_mean']:.3f} in Table 2",
        f"At the worst-off small hospital AUPRC changes by {both('worst_small', shared, 'auprc', 9)}, and recall by"
        f" {_paired(fair(9, shared, 'worst_small', 'recall', eps='1'))} at ε = 1",
        f"The large hospital gains too (AUPRC {both('large', shared, 'auprc', 9)})",
        f"falls by {_paired(fair(9, scaffold, 'worst_small', 'auprc', eps='1'))} and the large hospital's by"
        f" {_paired(fair(9, scaffold, 'large', 'auprc', eps='1'))}",
        f"(worst-off small hospital's AUPRC {_paired(fair(9, fedper, 'worst_small', 'auprc', eps='1'))} at ε = 1)",
        f"with intervals that cross zero ({both('worst_small', ditto_dp, 'recall', 9)})",
    ]


def prose_many_cost(root: Path) -> str:
    r = _json(root, "many_hospitals.json")["ratio"]
    high, low = r["over"]
    return (
        f"{high} small hospitals cost {r['median']:.2f}× what {low} do per training image (up to"
        f" {r['max']:.2f}× in the slowest repeat)"
    )


def prose_pneumonia_client_level(root: Path) -> list[str]:
    fig = _csv(root, f"{PNEUMONIA}/fig11.csv")
    small = fig[(fig["group"] == "small hospitals (mean)") & (fig["metric"] == "auroc")]
    none = _one(small, placement="none")["mean"]
    clip = _one(small[small["reference"]], placement="client_level")["mean"]
    rows = _csv(root, f"{PNEUMONIA}/privacy_fig11.csv")
    sigma = rows[rows["level"] == "client"].groupby("epsilon_target")["sigma"].first()
    return [
        f"(σ = {sigma[1.0]:.1f} at ε = 1, {sigma[10.0]:.1f} at ε = 10, {sigma[100.0]:.2f} at ε = 100)",
        f"costs AUROC, {none:.3f} → {clip:.3f}",
    ]


def prose_peers(root: Path) -> list[str]:
    ratios = _json(root, "peers.json")["ratios"]

    def ratio(name: str, cpus: int) -> str:
        r = ratios[str(cpus)][name]
        return f"{r['median']:.2f}× [{r['min']:.2f}–{r['max']:.2f}]"

    return [
        f"takes {ratio('plain_over_fedhet', 1)} fedhet's at one CPU and {ratio('plain_over_fedhet', 2)} at two",
        f"its loop takes {ratio('flower_over_plain', 1)} the plain loop's at one CPU and"
        f" {ratio('flower_over_plain', 2)} at two",
    ]


def prose_grid(root: Path) -> list[str]:
    before, after = _json(root, "grid_quick.json")["runs"]
    full = _json(root, "grid_privacy.json")["runs"][0]
    return [
        f"from {before['cells_per_hour']:.0f} to {after['cells_per_hour']:.0f} cells per hour",
        f"from {before['median_outside_training_s']:.1f} s to {after['median_outside_training_s']:.1f} s",
        f"{after['outside_training_share']:.0%} of a quick cell's process time",
        f"{full['outside_training_share']:.0%} at full scale",
    ]


def prose_client_level(root: Path) -> list[str]:
    fig = _csv(root, "fig11.csv")
    small = fig[(fig["group"] == "small hospitals (mean)") & (fig["metric"] == "auroc")]
    client = small[(small["placement"] == "client_level") & ~small["reference"]].set_index("epsilon")
    clip = _one(small[small["reference"]], placement="client_level")["mean"]
    none = _one(small, placement="none")["mean"]
    sigma = _csv(root, "privacy_fig11.csv").query("level == 'client'").groupby("epsilon_target")["sigma"].first()
    return [
        f"(small hospitals' AUROC {_pm(client.loc[1.0])}; σ = {sigma[1.0]:.1f})",
        f"at ε = 10 still far below ({_pm(client.loc[10.0])})",
        f"only at ε = 100 (σ = {sigma[100.0]:.2f}) does it come back to {client.loc[100.0, 'mean']:.3f}",
        f"costs little here ({clip:.3f} against {none:.3f} without DP)",
    ]


def prose_audit(root: Path) -> list[str]:
    fed, local = (_csv(root, f) for f in AUDIT_FILES)
    control, local_control = fed[fed["dp"] == "nodp"], local[local["dp"] == "nodp"].iloc[0]
    right = ", ".join(str(v) for v in control["correct"].iloc[:-1]) + f" and {control['correct'].iloc[-1]}"
    return [
        f"is {fed['max_bound'].iloc[0]:.2f} (`max_bound`",
        f"{right} of {control['guesses'].iloc[0]} right against the federated model over seeds {_seeds(control)}",
        f"{local_control['correct']} of {local_control['guesses']} against the small hospital's own (seed"
        f" {local_control['seed']}); bounds of 0 and {local_control['epsilon_lower_bound']:.3f}",
        f"the federated control's {control['correct'].sum()} of {control['guesses'].sum()} is within chance"
        f" (two-sided P = {_binomial_p(control['correct'].sum(), control['guesses'].sum()):.3f})",
        f"so seed {control['seed'].iloc[0]}'s {control['correct'].iloc[0]} below chance"
        f" (P = {_binomial_p(control['correct'].iloc[0], control['guesses'].iloc[0]):.3f})",
    ]


def _binomial_p(right: int, guesses: int) -> float:
    """Two-sided P of ``right`` correct guesses of ``guesses`` when each is a fair coin."""
    from scipy import stats

    tail = min(stats.binom.cdf(right, guesses, 0.5), stats.binom.sf(right - 1, guesses, 0.5))
    return min(1.0, 2 * float(tail))


def prose_engine_audit(root: Path) -> list[str]:
    df = _csv(root, "engine_audit.csv")
    control = df[~np.isfinite(df["epsilon_accounted"])]
    private = df[np.isfinite(df["epsilon_accounted"])]
    return [
        f"clipping-only control gives bounds of {control['epsilon_lower_bound'].min():.2f}–"
        f"{control['epsilon_lower_bound'].max():.2f} over seeds {_seeds(control)}",
        f"bound/ε of at most {private['bound_ratio'].max():.2f}",
    ]


def _seeds(df: pd.DataFrame) -> str:
    seeds = sorted(df["seed"].unique())
    return f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


PROSE: list[Callable[[Path], str | list[str]]] = [
    prose_many_hospitals,
    prose_pneumonia_large_alone,
    prose_engine_audit,
    prose_pneumonia_remedies,
    prose_fashion_remedies,
    prose_many_cost,
    prose_pneumonia_answer,
    prose_pneumonia_client_level,
    prose_pneumonia_dp,
    prose_shared_under_dp,
    prose_dp_cost,
    prose_dp_profile,
    prose_fedper_recall,
    prose_selection,
    prose_federated_vs_small,
    prose_large_only,
    prose_budget,
    prose_sweep_endpoints,
    prose_trend_recall,
    prose_trend_auroc,
    prose_dp_everywhere,
    prose_sigma,
    prose_fedavg_weight,
    prose_dp_small_hospitals,
    prose_clipping_cost,
    prose_pneumonia_tuned,
    prose_fashion_tuned,
    prose_peers,
    prose_grid,
    prose_client_level,
    prose_audit,
]


# --- blocks in README.md and docs/**/*.md ---------------------------------------------------


def pages(root: Path) -> list[Path]:
    """The files that may hold blocks and prose, relative to ``root``, in a fixed order."""
    found: dict[Path, None] = {}
    for pattern in PAGES:
        for path in sorted(root.glob(pattern)):
            found[path.relative_to(root)] = None
    return list(found)


LINK_RE = re.compile(r"\]\((?!https?://|#|/)([^)\s]+)\)")


def _relink(text: str, page: Path) -> str:
    """Render functions write links from the repository root (``docs/results/x.csv``); in a
    page under docs/ a link is relative to the page's folder (``x.csv``)."""
    if page.parent == Path("."):
        return text
    return LINK_RE.sub(lambda m: f"]({os.path.relpath(m[1], page.parent)})", text)


def _body(name: str, root: Path, page: Path = Path("README.md")) -> str:
    """A block's text between its markers in ``page``: the rendered text and a blank line."""
    return _relink(BLOCKS[name](root), page) + "\n\n"


def blocks(text: str, where: str = "README.md") -> dict[str, str]:
    """NAME → body of every block in one file's ``text``."""
    found: dict[str, str] = {}
    for m in BLOCK_RE.finditer(text):
        name = m["name"]
        if name in found:
            raise ValueError(f"block {name!r} appears twice in {where}")
        if name not in BLOCKS:
            raise ValueError(f"block {name!r} in {where} has no render function in BLOCKS")
        found[name] = m["body"]
    return found


def all_blocks(texts: dict[Path, str]) -> dict[str, tuple[Path, str]]:
    """NAME → (file, body) across files; a name in two files is an error."""
    found: dict[str, tuple[Path, str]] = {}
    for path, text in texts.items():
        for name, body in blocks(text, str(path)).items():
            if name in found:
                raise ValueError(f"block {name!r} appears in both {found[name][0]} and {path}")
            found[name] = (path, body)
    return found


def _marker(name: str) -> str:
    return f"<!-- generated: {name} ({COMMAND}) -->"


def regenerate(text: str, root: Path, where: str = "README.md") -> str:
    blocks(text, where)  # unknown or repeated names stop here
    page = Path(where)
    return BLOCK_RE.sub(lambda m: f"{_marker(m['name'])}\n{_body(m['name'], root, page)}{END}", text)


def _texts(root: Path) -> dict[Path, str]:
    return {path: (root / path).read_text() for path in pages(root)}


def check(root: Path = ROOT) -> list[str]:
    """Problems found: one entry per differing or missing block and per missing prose phrase."""
    texts = _texts(root)
    found = all_blocks(texts)
    problems = []
    for name in BLOCKS:
        if name not in found:
            where = ", ".join(PAGES)
            problems.append(f"block {name}: none of {where} has '{_marker(name)}' ... '{END}'")
            continue
        path, body = found[name]
        want = _body(name, root, path)
        if body != want:
            diff = difflib.unified_diff(
                body.splitlines(), want.splitlines(), f"{path}:{name}", f"{name} from files", lineterm=""
            )
            problems.append(f"block {name} differs from the files ({path}):\n" + "\n".join(diff))
    flat = [" ".join(text.split()) for text in texts.values()]
    for phrase_of in PROSE:
        phrases = phrase_of(root)
        for phrase in [phrases] if isinstance(phrases, str) else phrases:
            wanted = " ".join(phrase.split())
            if not any(wanted in text for text in flat):
                problems.append(f"prose {phrase_of.__name__}: no page says {phrase!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report differences, change nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (README.md, docs/, benchmarks/)")
    args = parser.parse_args(argv)
    if not args.check:
        texts = _texts(args.root)
        all_blocks(texts)  # a name in two files stops before anything is written
        for path, text in texts.items():
            new = regenerate(text, args.root, str(path))
            if new != text:
                (args.root / path).write_text(new)
    problems = check(args.root)
    for p in problems:
        print(p, end="\n\n")
    if args.check:
        return 1 if problems else 0
    print(f"{len(BLOCKS)} blocks regenerated in README.md and docs/; {len(problems)} problems left")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
