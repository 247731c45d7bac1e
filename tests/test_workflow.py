"""The Snakemake DAG: the quick config end to end, and what a config change reschedules."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import OUT, REPO, copy_workflow, snakemake

pytestmark = pytest.mark.slow
# 6 core cells + the sweeps' federated cells (6 scenarios × 2 seeds, the core one shared)
# + the DP cells (federated and large-only at all, federated at small_hospitals: 2 ε × 2 seeds)
# + the remedies (4 algorithms × 2 seeds) + their DP twin (FedProx at ε = 1 × 2 seeds)
# + the selection cells on validation splits (2 algorithms × 2 seeds)
QUICK_CELLS = 6 + 10 + 12 + 8 + 2 + 4
FIGURES = {"figure": 8}  # Figures 2–9


def scheduled(output: str) -> dict[str, int]:
    """Rule → job count from a dry run's job stats table."""
    counts = {}
    in_table = False
    for line in output.splitlines():
        if line.startswith("job") and "count" in line:
            in_table = True
            continue
        if in_table:
            match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
            if match:
                counts[match[1]] = int(match[2])
            elif line.strip() and not set(line.strip()) <= {"-", " "}:
                break
    counts.pop("total", None)
    return counts


@pytest.fixture(scope="module")
def built(quick_build) -> Path:
    return quick_build


def test_quick_dag_builds_every_output(built):
    results = built / OUT
    metrics = pd.read_parquet(results / "metrics.parquet")
    assert set(metrics["mode"]) == {"federated", "local", "large_only"}
    assert set(metrics["seed"]) == {0, 1}
    assert (results / "fig1.svg").read_text().lstrip().startswith("<svg")
    table2 = pd.read_csv(results / "tables" / "table2.csv").set_index("metric")
    assert 0.5 < table2.loc["auroc", "federated_mean"] <= 1.0
    # a tenth of the study's hospitals is not the study's setup: no published numbers beside it
    assert not any(column.endswith("_study") for column in table2)
    assert "red ticks" not in (results / "fig1.svg").read_text()
    table1 = pd.read_csv(results / "tables" / "table1.csv")
    assert table1["n_total"].tolist() == [3000, 300, 300, 300, 300]
    logs = [p.relative_to(results / "logs").as_posix() for p in (results / "logs").rglob("*.log")]
    for rule in ("external_test", "partition", "train_cell", "aggregate", "core_tables", "fig1"):
        assert any(log.startswith(rule) for log in logs), rule
    # downloads are shared by every run and dataset-scoped: results/data/<dataset>/
    assert sorted(p.name for p in (built / "results" / "data" / "fashion_mnist").iterdir()) == sorted(
        [
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
        ]
    )
    assert len(list((built / "results" / "data" / "logs" / "fashion_mnist").glob("*.log"))) == 4
    assert len(list((results / "benchmarks" / "train_cell").rglob("*.tsv"))) == QUICK_CELLS
    assert len(list((results / "benchmarks" / "audit_cell").rglob("*.tsv"))) == 2  # the audit's own cells
    privacy = pd.read_csv(results / "tables" / "privacy.csv")
    assert len(privacy) == QUICK_CELLS * 5  # × 5 hospitals
    # Private: the hospitals the placement names, among those that train in the cell's mode
    # (in large_only the small hospitals only evaluate: not private, and they say so).
    modes, hospitals = privacy["mode"], privacy["hospital"]
    trains = [mode != "large_only" or h.startswith("large") for mode, h in zip(modes, hospitals, strict=True)]
    placed = [
        dp.startswith("all-") or (dp.startswith("small_hospitals-") and h.startswith("small"))
        for dp, h in zip(privacy["dp"], privacy["hospital"], strict=True)
    ]
    assert privacy["trained"].tolist() == trains
    assert privacy["private"].tolist() == [t and p for t, p in zip(trains, placed, strict=True)]
    spent = privacy[privacy["private"]]
    assert (spent["epsilon_spent"] <= spent["epsilon_target"]).all() and set(spent["epsilon_target"]) == {1, 10}


def test_quick_dag_builds_the_sweeps(built):
    results = built / OUT
    for n in (2, 3, 4, 5):
        assert (results / f"fig{n}.svg").read_text().lstrip().startswith("<svg"), n
    fig3 = pd.read_csv(results / "figures" / "fig3.csv")
    assert sorted(fig3["x"].unique()) == [0.1, 0.5] and set(fig3["n"]) == {2}
    assert set(fig3["panel"]) == {"(a) small hospitals at 10% abnormal", "(b) small hospitals at 20% abnormal"}
    # Figure 2 is Figure 3's panel (a): the same cells, the same numbers.
    fig2 = pd.read_csv(results / "figures" / "fig2.csv")
    panel_a = fig3[fig3["small.abnormal_ratio"] == 0.1]
    recall = fig2[fig2["metric"] == "recall"]
    assert recall[["curve", "x", "mean"]].values.tolist() == panel_a[["curve", "x", "mean"]].values.tolist()
    trends = pd.read_csv(results / "tables" / "trends.csv")
    # 2 experiments × 2 small-hospital ratios × 2 curves × 3 metrics, each over 2 ratios × 2 seeds
    # (precision drops the cells where nothing was predicted abnormal)
    assert len(trends) == 24 and set(trends["dp"]) == {"nodp"}
    assert (trends.loc[trends["metric"] != "precision", "n_points"] == 4).all() and trends["n_points"].max() == 4
    cost = pd.read_csv(results / "tables" / "cost.csv").set_index("cells")
    assert cost.loc["fixed_size", "n_cells"] == 8 and cost.loc["all cells", "n_cells"] == QUICK_CELLS


def test_quick_dag_builds_the_privacy_figures(built):
    results = built / OUT
    for n in (6, 7):
        assert (results / f"fig{n}.svg").read_text().lstrip().startswith("<svg"), n
    fig7 = pd.read_csv(results / "figures" / "fig7.csv")
    curves = set(fig7["curve"])
    assert curves == {"federated, DP at every hospital", "federated, DP at small hospitals only", "federated, no DP"}
    dp = fig7[~fig7["reference"]]
    assert sorted(dp["epsilon"].unique()) == [1, 10] and set(dp["n"]) == {2}
    assert fig7[fig7["reference"]]["epsilon"].isna().all()


def test_quick_dag_audits_its_privacy_claim_in_cells_of_its_own(built):
    results = built / OUT
    audit = pd.read_csv(results / "tables" / "audit.csv").set_index("dp")
    assert audit.index.tolist() == ["nodp", "all-eps1-delta1e-05-clip1"]
    assert (audit["canaries"] == 500).all() and (audit["guesses"] == 100).all()
    assert audit.loc["all-eps1-delta1e-05-clip1", "epsilon_accounted"] <= 1
    assert (audit["epsilon_lower_bound"] <= audit["epsilon_accounted"]).all()
    cells = sorted(
        p.parent.relative_to(results / "audit").as_posix() for p in (results / "audit").rglob("scores.parquet")
    )
    assert cells == [
        "engine/large1x3000r0.5-small4x300r0.1/small_1/all-eps1-delta1e-05-clip1/lr0.01/m1000/seed0",
        *(
            f"large1x3000r0.5-small4x300r0.1/federated/fedavg/{dp}/lr0.01/canaries-small_1-m500/seed0"
            for dp in ("all-eps1-delta1e-05-clip1", "nodp")
        ),
    ]
    engine = pd.read_csv(results / "tables" / "engine_audit.csv")
    assert engine["dp"].tolist() == ["all-eps1-delta1e-05-clip1"] and (engine["canaries"] == 1000).all()
    assert (engine["epsilon_lower_bound"] <= engine["epsilon_accounted"]).all() and engine["conclusive"].all()
    # canary cells are not training cells: the aggregate holds the training cells' rows only
    trained = sum(len(pd.read_parquet(p)) for p in (results / "cells").rglob("metrics.parquet"))
    assert len(pd.read_parquet(results / "metrics.parquet")) == trained


def test_quick_dag_builds_the_remedy_figures_and_the_selection(built):
    results = built / OUT
    for n in (8, 9):
        assert (results / f"fig{n}.svg").read_text().lstrip().startswith("<svg"), n
    fig8 = pd.read_csv(results / "figures" / "fig8.csv")
    assert set(fig8["algorithm"]) == {"fedavg", "fedprox-mu0.01", "fedper-head1", "shared-beta0.05-alpha0.5", "ifca-k2"}
    assert set(fig8["metric"]) == {"recall", "precision", "auroc", "auprc"}
    # every seed paired with FedAvg's (precision is undefined where nothing is called abnormal)
    assert set(fig8.loc[fig8["metric"] != "precision", "n_pairs"]) == {2}
    fedavg = fig8[fig8["algorithm"] == "fedavg"]
    assert (fedavg["diff_mean"] == 0).all()  # FedAvg minus itself, seed by seed
    fig9 = pd.read_csv(results / "figures" / "fig9.csv")
    assert set(fig9["setting"]) == {"large 50%, small 10%; ε = 1"}
    selection = pd.read_csv(results / "tables" / "selection.csv")
    assert sorted(selection["algorithm"]) == ["fedavg", "fedprox-mu1"]
    assert selection.groupby("family")["chosen"].sum().tolist() == [1, 1]
    validation = pd.read_parquet(results / "metrics.parquet").query("holdout == 'validation'")
    assert set(validation["hospital_type"]) == {"large", "small", "external"}
    # validation splits are carved from the training records: 20% of each hospital's 80%
    small = validation[(validation["hospital"] == "small_1") & (validation["metric"] == "auroc")]
    assert set(small["n_test"]) == {48}


def quick_experiments() -> dict:
    """config/quick.yaml's experiments: an override that states experiments states them all."""
    return yaml.safe_load((REPO / "config" / "quick.yaml").read_text())["experiments"]


def test_adding_one_algorithm_schedules_only_its_cells(built, fashion_mirror):
    experiments = quick_experiments()
    experiments["remedies"]["algorithms"] = ["fedavg", "fedprox-mu0.01", "fedprox-mu0.1"]
    overrides = {"experiments": experiments}
    output = snakemake(built, "-n", f"{OUT}/fig8.svg", overrides=overrides, mirror=fashion_mirror)
    paths = re.findall(rf"output: ({OUT}/cells/\S+)/metrics.parquet", output)
    assert len(paths) == 2 and all("/federated/fedprox-mu0.1/nodp/" in p for p in paths)


def test_unknown_algorithm_stops_before_any_job_naming_the_key(tmp_path, fashion_mirror):
    workdir = copy_workflow(tmp_path)
    overrides = {"experiments": {"remedies": {"algorithms": ["fedavg", "fedprox-mu-1"]}}}
    with pytest.raises(AssertionError) as err:
        snakemake(workdir, "-n", "all", overrides=overrides, mirror=fashion_mirror)
    assert "experiments.remedies.algorithms" in str(err.value) and "Job stats" not in str(err.value)
    overrides = {"experiments": {"remedies": {"algorithms": ["fedavg", "fedsgd"]}}}
    with pytest.raises(AssertionError, match=r"experiments.remedies.algorithms\[1\]: unknown algorithm 'fedsgd'"):
        snakemake(workdir, "-n", "all", overrides=overrides, mirror=fashion_mirror)


def test_report_holds_every_figure_and_table_with_captions(built, fashion_mirror):
    snakemake(built, "--report", f"{OUT}/report.html", mirror=fashion_mirror)
    html = (built / OUT / "report.html").read_text()
    tables = ("table1.csv", "table2.csv", "table3.csv", "runtime.csv", "budget.csv", "privacy.csv", "external.csv")
    tables += ("count_vs_size.csv", "privacy_fig6.csv", "audit.csv", "engine_audit.csv", "provenance.csv")
    for name in ("fig1.svg", *tables):
        assert name in html, name
    assert "fashion_mnist (abnormal: classes 7, 8, 9)" in html  # captions name the run's dataset
    # captions are rendered with the config that produced the outputs
    assert "Figure 1: mean AUROC" in html and "Config: 2 rounds" in html
    assert "1 large hospital of 3,000 images at 50% abnormal, 4 small hospitals of 300 images" in html
    assert "'abnormal_ratio':" not in html  # no raw Python dict of the config in a caption


def test_the_short_figure_name_links_to_this_configurations_figure(built, fashion_mirror):
    snakemake(built, "results/fig7.svg", mirror=fashion_mirror)
    link = built / "results" / "fig7.svg"
    assert link.is_symlink() and os.readlink(link) == "fashion_mnist/fig7.svg"
    assert link.read_bytes() == (built / OUT / "fig7.svg").read_bytes()


def test_nothing_to_do_after_a_full_build(built, fashion_mirror):
    assert scheduled(snakemake(built, "-n", "all", mirror=fashion_mirror)) == {}


def test_figure_style_change_reruns_no_training(built, fashion_mirror):
    jobs = scheduled(snakemake(built, "-n", "all", overrides={"figures": {"width": 400}}, mirror=fashion_mirror))
    assert jobs == {"all": 1, "fig1": 1, **FIGURES}


def test_new_seed_schedules_only_its_cells(built, fashion_mirror):
    jobs = scheduled(snakemake(built, "-n", "all", overrides={"seeds": [0, 1, 2]}, mirror=fashion_mirror))
    assert jobs["train_cell"] == 3 and jobs["partition"] == 1
    assert "fetch_data" not in jobs and "external_test" not in jobs


def test_training_change_reruns_cells_but_not_partitions(built, fashion_mirror):
    jobs = scheduled(snakemake(built, "-n", "all", overrides={"training": {"lr": 0.02}}, mirror=fashion_mirror))
    assert jobs["train_cell"] == QUICK_CELLS and "partition" not in jobs


def test_a_dp_engine_change_reruns_only_dp_cells(built, fashion_mirror):
    output = snakemake(built, "-n", "all", overrides={"privacy": {"grad_sample_mode": "hooks"}}, mirror=fashion_mirror)
    cells = re.findall(rf"output: {OUT}/cells/[^/]+/[^/]+/[^/]+/([^/]+)/lr0.01/seed", output)
    # the quick DAG's DP cells: 2 modes × 2 ε × 2 seeds at all, 2 ε × 2 seeds at small_hospitals, FedProx at ε = 1
    assert len(cells) == 2 * 2 * 2 + 2 * 2 + 2 == scheduled(output)["train_cell"]
    assert "nodp" not in cells


def test_only_the_core_cells_evaluate_every_round(built):
    # the budget table reads per-round metrics of the core cells; the rest skip that cost
    per_round = {}
    for path in (built / OUT / "cells").rglob("rounds.parquet"):
        quantities = set(pd.read_parquet(path)["quantity"])
        per_round[path.parent.relative_to(built / OUT / "cells").as_posix()] = "auroc" in quantities
    core = {key for key, evaluated in per_round.items() if evaluated}
    assert len(core) == 6 and len(per_round) == QUICK_CELLS
    assert {key.split("/")[1] for key in core} == {"federated", "local", "large_only"}
    assert all(key.split("/")[2:4] == ["fedavg", "nodp"] for key in core)


def test_moving_a_finished_grid_to_a_gpu_retrains_nothing(built, fashion_mirror):
    # device says where a cell runs, not what it computes: not a rerun trigger
    assert scheduled(snakemake(built, "-n", "all", overrides={"device": "cuda"}, mirror=fashion_mirror)) == {}


@pytest.mark.parametrize("device, slots", [("cpu", 0), ("auto", 0), ("cuda", 1)])
def test_training_cells_reserve_a_gpu_slot_only_with_device_cuda(tmp_path, fashion_mirror, device, slots):
    workdir = copy_workflow(tmp_path)
    output = snakemake(workdir, "-n", f"{OUT}/fig1.svg", overrides={"device": device}, mirror=fashion_mirror)
    jobs = re.findall(r"rule (\w+):.*?resources: ([^\n]*)", output, flags=re.S)
    cells = [res for rule, res in jobs if rule == "train_cell"]
    assert len(cells) == 6 and all(f"gpu={slots}" in res.split(", ") for res in cells), cells


def test_a_config_with_its_own_experiments_runs_none_of_the_defaults(tmp_path, fashion_mirror):
    workdir = copy_workflow(tmp_path)
    mine = {"mine": {"grid": {"small.abnormal_ratio": [0.2]}, "seeds": [0]}}
    jobs = scheduled(snakemake(workdir, "-n", "all", overrides={"experiments": mine}, mirror=fashion_mirror))
    # the core grid (6 cells) and the one cell of `mine`; no sweep, DP or remedy cell and no figure
    # beyond Figure 1, although config.yaml and quick.yaml both define experiments
    assert jobs["train_cell"] == 6 + 1 and "figure" not in jobs and "selection" not in jobs
    none = scheduled(snakemake(workdir, "-n", "all", overrides={"experiments": {}}, mirror=fashion_mirror))
    assert none["train_cell"] == 6 and "trends" not in none


def test_tuning_both_ways_chooses_lr_and_clip_norm_charges_the_private_choice_and_draws_both(
    tmp_path, built, fashion_mirror
):
    workdir = tmp_path / "tuned"
    shutil.copytree(built, workdir, symlinks=True)
    experiments = quick_experiments()
    experiments["tuning"] = {
        "holdout": ["validation", "public"],
        "dp": {"placement": ["none", "all", "small_hospitals"], "epsilon": [1], "max_grad_norm": [0.1, 1.0]},
        "lr": [0.1],
        "seeds": [0],
    }
    choices = [  # the config's own settings are the quick build's cells: nothing to train
        {"mode": "federated", "placement": "none", "lr": 0.01},
        {"mode": "federated", "placement": "all", "epsilon": 1, "max_grad_norm": 1.0, "lr": 0.01},
        {"mode": "federated", "placement": "small_hospitals", "epsilon": 1, "max_grad_norm": 0.1, "lr": 0.1},
    ]
    experiments["tuned"] = {"choices": choices, "seeds": [0, 1]}  # chosen_on validation
    experiments["tuned_public"] = {"choices": choices, "chosen_on": "public", "seeds": [0, 1]}
    tables = [f"{OUT}/tables/{name}.csv" for name in ("dp_selection", "tuning_charge", "privacy_fig13")]
    targets = [*tables, f"{OUT}/fig13.svg"]
    dry = snakemake(workdir, "-n", *targets, overrides={"experiments": experiments}, mirror=fashion_mirror)
    trained = re.findall(rf"output: {OUT}/cells/[^/]+/federated/fedavg/([^/]+/[^/]+/seed[^/]+)/metrics", dry)
    # per way of tuning: no DP + 2 placements × 2 C, at one lr; the chosen settings shared by
    # both ways, only the last one new (× 2 seeds)
    candidates = [
        "nodp/lr0.1",
        *[f"{p}-eps1-delta1e-05-clip{c}/lr0.1" for p in ("all", "small_hospitals") for c in (0.1, 1)],
    ]
    assert sorted(trained) == sorted(
        [f"{c}/seed0-{holdout}" for c in candidates for holdout in ("validation", "public")]
        + [f"small_hospitals-eps1-delta1e-05-clip0.1/lr0.1/seed{s}" for s in (0, 1)]
    )
    snakemake(workdir, *targets, overrides={"experiments": experiments}, mirror=fashion_mirror)
    table = pd.read_csv(workdir / OUT / "tables" / "dp_selection.csv")
    assert len(table) == 2 * 5 and (table["metric"] == "balanced_p_true").all()
    assert table.groupby(["holdout", "placement"])["chosen"].sum().eq(1).all()
    assert set(table.loc[table["holdout"] == "public", "score_noise"]) == {0}
    charges = pd.read_csv(workdir / OUT / "tables" / "tuning_charge.csv")
    # the private choices with DP: every hospital at placement all, the small ones at
    # small_hospitals (the large one trains without noise there), × 2 seeds; 2 candidates each
    assert len(charges) == (5 + 4) * 2 and set(charges["candidates"]) == {2}
    assert (charges["epsilon_total"] > charges["epsilon_training"]).all()
    privacy = pd.read_csv(workdir / OUT / "tables" / "privacy_fig13.csv")
    assert set(privacy["tuning"]) == {"fixed", "public", "validation"}
    public = privacy[(privacy["tuning"] == "public") & privacy["private"]]
    assert (public["epsilon_total"] == public["epsilon_spent"]).all() and (public["epsilon_tuning"] == 0).all()
    fig13 = pd.read_csv(workdir / OUT / "figures" / "fig13.csv")
    assert set(fig13["tuning"]) == {"fixed", "public", "validation"}
    tuned = fig13[(fig13["placement"] == "small_hospitals") & (fig13["tuning"] != "fixed")]
    assert set(tuned["lr"]) == {0.1} and set(tuned["max_grad_norm"]) == {0.1} and set(tuned["n"]) == {2}
    # a privately chosen setting stands at its total ε, the largest of its hospitals'
    private = fig13[(fig13["tuning"] == "validation") & (fig13["placement"] == "small_hospitals")]
    total = charges[charges["dp"].str.startswith("small_hospitals")]["epsilon_total"].max()
    assert len(private) and private["epsilon_axis"].to_numpy() == pytest.approx(total)
    assert (tuned.loc[tuned["tuning"] == "public", "epsilon_axis"] == 1).all()


PNEUMONIA = {
    "data": {"dataset": "pneumonia_mnist", "abnormal_classes": [1]},
    "hospitals": [
        {"type": "large", "count": 1, "size": 300, "abnormal_ratio": 0.5},
        {"type": "small", "count": 2, "size": 60, "abnormal_ratio": 0.1},
    ],
    "seeds": [0],
    "experiments": {
        "scanner_shift": {"grid": {"small.shift": ["none", "blur3"]}, "modes": ["federated", "local"], "seeds": [0]}
    },
    "audit": {"seeds": [], "engine": {"seeds": []}},  # the quick build's audit is tested on its own
}


def test_a_pneumonia_run_leaves_the_fashion_mnist_results_intact(tmp_path, built, fashion_mirror, medmnist_mirror):
    workdir = tmp_path / "both"
    shutil.copytree(built, workdir, symlinks=True)
    fashion = {p: p.read_bytes() for p in (workdir / OUT).rglob("*") if p.is_file()}
    mirrors = f"{fashion_mirror}{os.pathsep}{medmnist_mirror}"
    snakemake(workdir, "all", overrides=PNEUMONIA, mirror=mirrors)
    pneumonia = workdir / "results" / "pneumonia_mnist"
    for output in ("fig1.svg", "fig10.svg", "tables/table2.md", "metrics.parquet"):
        assert (pneumonia / output).is_file(), output
    metrics = pd.read_parquet(pneumonia / "metrics.parquet")
    # the official test split (624 images) is every model's external test set
    assert set(metrics.loc[metrics.hospital_type == "external", "n_test"]) == {624}
    assert {s.endswith("_blur3") for s in metrics["scenario"]} == {True, False}
    assert not any(c.endswith("_study") for c in pd.read_csv(pneumonia / "tables" / "table2.csv"))
    after = {p: p.read_bytes() for p in (workdir / OUT).rglob("*") if p.is_file()}
    assert after == fashion  # not one FashionMNIST output touched


def test_one_figure_target_schedules_only_what_it_needs(tmp_path, fashion_mirror):
    workdir = copy_workflow(tmp_path)
    jobs = scheduled(snakemake(workdir, "-n", f"{OUT}/fig1.svg", mirror=fashion_mirror))
    assert jobs == {"fetch_data": 4, "external_test": 1, "partition": 2, "train_cell": 6, "fig1_data": 1, "fig1": 1}


@pytest.mark.parametrize(
    "target, cells",
    [
        (f"{OUT}/fig3.svg", 8),
        (f"{OUT}/fig5.svg", 8),
        (f"{OUT}/fig2.svg", 4),
        (f"{OUT}/fig6.svg", 2 * 2 * 2 + 2 * 2),  # DP curves + no-DP references
        (f"{OUT}/fig7.svg", 2 * 2 * 2 + 2),
        (f"{OUT}/fig8.svg", 5 * 2),  # FedAvg (the core cell) and 4 remedies × 2 seeds
        (f"{OUT}/fig9.svg", 2 * 2),  # FedAvg and FedProx with DP at ε = 1
        (f"{OUT}/tables/selection.csv", 2 * 2),  # validation cells: none shared with test cells
        ("all", QUICK_CELLS),
    ],
)
def test_sweep_figure_schedules_only_its_cells_once(tmp_path, fashion_mirror, target, cells):
    workdir = copy_workflow(tmp_path)
    output = snakemake(workdir, "-n", target, mirror=fashion_mirror)
    paths = re.findall(rf"output: ({OUT}/cells/\S+)/metrics.parquet", output)
    assert len(paths) == len(set(paths)) == cells == scheduled(output)["train_cell"]


def test_infeasible_sweep_stops_before_any_job_naming_the_grid_point(tmp_path, fashion_mirror):
    workdir = copy_workflow(tmp_path)
    grid = {"grid": {"large.abnormal_ratio": [0.5, 1.0], "large.size": [3000, 20000]}}
    with pytest.raises(AssertionError) as err:
        snakemake(workdir, "-n", "all", overrides={"experiments": {"big": grid}}, mirror=fashion_mirror)
    message = str(err.value)
    assert "experiments.big grid point (large.abnormal_ratio=1, large.size=20000)" in message
    assert "needs 20120 abnormal images" in message and "Job stats" not in message


def test_bad_config_stops_before_any_job(tmp_path, fashion_mirror):
    workdir = copy_workflow(tmp_path)
    with pytest.raises(AssertionError, match="training.rounds"):
        snakemake(workdir, "-n", "all", overrides={"training": {"rounds": 0}}, mirror=fashion_mirror)


def test_killed_run_resumes_with_the_same_command_and_identical_results(tmp_path, built, fashion_mirror):
    """SIGKILL to the whole workflow mid-training, then what a user does: the same command
    (and `--unlock` if Snakemake asks for it). The result equals the uninterrupted build's,
    and nothing partial or temporary is left among the outputs."""
    workdir = copy_workflow(tmp_path)
    target = f"{OUT}/fig1.svg"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", target, "--configfile", "config/quick.yaml"]
    env = {**os.environ, "FEDHET_DATA_MIRROR": str(fashion_mirror)}
    proc = subprocess.Popen(
        cmd, cwd=workdir, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    logs = workdir / OUT / "logs" / "train_cell"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if any("round 1/" in log.read_text() for log in logs.rglob("*.log")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the workflow ended before any cell was half-way"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    rerun = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if rerun.returncode != 0:  # a killed Snakemake leaves its lock: the README says what to do
        assert "--unlock" in rerun.stdout + rerun.stderr, rerun.stderr[-3000:]
        subprocess.run([*cmd, "--unlock"], cwd=workdir, env=env, check=True, capture_output=True)
        rerun = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "IncompleteFilesException" not in rerun.stderr

    results = workdir / OUT
    leftovers = [p for p in results.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]
    assert [p.name for p in leftovers] == [".snakemake_timestamp"] * len(leftovers)  # Snakemake's own markers
    cells = sorted((results / "cells").rglob("metrics.parquet"))
    assert len(cells) == 6
    for path in cells:
        reference = built / path.relative_to(workdir)
        pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(reference), check_exact=True)
        for name in ("rounds.parquet", "privacy.parquet"):
            assert (path.parent / name).read_bytes() == (reference.parent / name).read_bytes(), path.parent
    assert (results / "fig1.svg").read_bytes() == (built / OUT / "fig1.svg").read_bytes()
