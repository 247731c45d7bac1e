"""The Snakemake DAG: the quick config end to end, and what a config change reschedules."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "rules", "scripts", "config", "envs", "report"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, overrides: dict | None = None, mirror: Path) -> str:
    configfiles = ["config/quick.yaml"]
    if overrides:
        (workdir / "override.yaml").write_text(yaml.safe_dump(overrides))
        configfiles.append("override.yaml")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", *configfiles]
    env = {**os.environ, "FEDHET_DATA_MIRROR": str(mirror)}
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done.stdout + done.stderr


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
def built(tmp_path_factory, fashion_mirror) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(workdir, "all", mirror=fashion_mirror)
    return workdir


def test_quick_dag_builds_every_output(built):
    results = built / "results"
    metrics = pd.read_parquet(results / "metrics.parquet")
    assert set(metrics["mode"]) == {"federated", "local", "large_only"}
    assert set(metrics["seed"]) == {0, 1}
    assert (results / "fig1.svg").read_text().lstrip().startswith("<svg")
    table2 = pd.read_csv(results / "tables" / "table2.csv").set_index("metric")
    assert 0.5 < table2.loc["auroc", "federated_mean"] <= 1.0
    assert table2.loc["auroc", "federated_study"] == 0.993
    table1 = pd.read_csv(results / "tables" / "table1.csv")
    assert table1["n_total"].tolist() == [3000, 300, 300, 300, 300]
    logs = [p.relative_to(results / "logs").as_posix() for p in (results / "logs").rglob("*.log")]
    for rule in ("fetch_data", "external_test", "partition", "train_cell", "aggregate", "core_tables", "fig1"):
        assert any(log.startswith(rule) for log in logs), rule
    assert len(list((results / "benchmarks").rglob("*.tsv"))) == 6
    privacy = pd.read_csv(results / "tables" / "privacy.csv")
    assert len(privacy) == 6 * 5 and not privacy["private"].any()  # 6 cells × 5 hospitals, no DP


def test_report_holds_every_figure_and_table_with_captions(built, fashion_mirror):
    snakemake(built, "--report", "results/report.html", mirror=fashion_mirror)
    html = (built / "results" / "report.html").read_text()
    for name in ("fig1.svg", "table1.csv", "table2.csv", "table3.csv", "runtime.csv", "budget.csv", "privacy.csv"):
        assert name in html, name
    # captions are rendered with the config that produced the outputs
    assert "Figure 1: mean AUROC" in html and "Config: 2 rounds" in html


def test_nothing_to_do_after_a_full_build(built, fashion_mirror):
    assert scheduled(snakemake(built, "-n", "all", mirror=fashion_mirror)) == {}


def test_figure_style_change_reruns_no_training(built, fashion_mirror):
    jobs = scheduled(snakemake(built, "-n", "all", overrides={"figures": {"width": 400}}, mirror=fashion_mirror))
    assert jobs == {"all": 1, "fig1": 1}


def test_new_seed_schedules_only_its_cells(built, fashion_mirror):
    jobs = scheduled(snakemake(built, "-n", "all", overrides={"seeds": [0, 1, 2]}, mirror=fashion_mirror))
    assert jobs["train_cell"] == 3 and jobs["partition"] == 1
    assert "fetch_data" not in jobs and "external_test" not in jobs


def test_training_change_reruns_cells_but_not_partitions(built, fashion_mirror):
    jobs = scheduled(snakemake(built, "-n", "all", overrides={"training": {"lr": 0.02}}, mirror=fashion_mirror))
    assert jobs["train_cell"] == 6 and "partition" not in jobs


def test_one_figure_target_schedules_only_what_it_needs(tmp_path, fashion_mirror):
    workdir = copy_workflow(tmp_path)
    jobs = scheduled(snakemake(workdir, "-n", "results/fig1.svg", mirror=fashion_mirror))
    assert jobs == {"fetch_data": 4, "external_test": 1, "partition": 2, "train_cell": 6, "fig1_data": 1, "fig1": 1}


def test_bad_config_stops_before_any_job(tmp_path, fashion_mirror):
    workdir = copy_workflow(tmp_path)
    with pytest.raises(AssertionError, match="training.rounds"):
        snakemake(workdir, "-n", "all", overrides={"training": {"rounds": 0}}, mirror=fashion_mirror)
