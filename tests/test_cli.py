"""`fedhet cell` and `benchmarks/bench_cell.py` end to end, on small configs."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO
from fedhet.cli import main


def test_cell_command_trains_one_cell_and_writes_its_files(tmp_path, tiny_config, capsys):
    out = tmp_path / "cell"
    code = main(["cell", "--config", str(tiny_config), "--seed", "1", "--out", str(out), "--threads", "1"])
    assert code == 0
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(metrics["hospital"]) == {"large_1", "small_1", "small_2", "external"}
    assert (metrics["seed"] == 1).all() and (metrics["algorithm"] == "fedavg").all()
    assert set(pd.read_parquet(out / "rounds.parquet")["quantity"]) == {"train_loss"}
    assert not pd.read_parquet(out / "privacy.parquet")["private"].any()
    assert "round 1/1" in (out / "cell.log").read_text()
    printed = capsys.readouterr().out
    assert "small_1" in printed and "auroc" in printed


def test_cell_command_runs_an_algorithm_under_dp(tmp_path, tiny_config):
    out = tmp_path / "cell"
    args = ["--dp", "small_hospitals-eps4-delta1e-05-clip1", "--algorithm", "shared-beta0.1-alpha1"]
    assert main(["cell", "--config", str(tiny_config), "--out", str(out), "--threads", "1", *args]) == 0
    privacy = pd.read_parquet(out / "privacy.parquet").set_index("hospital")
    assert privacy["private"].to_dict() == {"large_1": False, "small_1": True, "small_2": True}
    assert (pd.read_parquet(out / "metrics.parquet")["algorithm"] == "shared-beta0.1-alpha1").all()
    assert (out / "shared.parquet").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dp", "everywhere-eps1"], "dp key 'everywhere-eps1'"),
        (["--algorithm", "fedsgd"], "--algorithm: unknown algorithm 'fedsgd'"),
        (["--algorithm", "fedprox-mu-2"], "--algorithm: 'fedprox-mu-2': bad parameter"),
    ],
)
def test_cell_command_refuses_bad_keys_with_exit_code_2_before_any_work(tmp_path, tiny_config, capsys, args, message):
    out = tmp_path / "cell"
    assert main(["cell", "--config", str(tiny_config), "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing fetched, drawn or trained


def test_cell_command_names_a_missing_config(tmp_path, capsys):
    assert main(["cell", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.yaml does not exist" in capsys.readouterr().err


def test_benchmark_script_measures_a_cell_and_its_dp_twin(tmp_path, tiny_config):
    out = tmp_path / "bench.json"
    script = REPO / "benchmarks" / "bench_cell.py"
    dp = "all-eps4-delta1e-05-clip1"
    args = ["--config", str(tiny_config), "--threads", "1", "--out", str(out), "--dp", dp, "--matmul-size", "256"]
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["train_images"] == 600 * 0.8 + 2 * 150 * 0.8
    assert report["matmul_peak_gflops"] > 0 and 0 < report["fraction_of_peak"]
    assert 0.0 <= report["small_mean_auroc"] <= 1.0
    assert dp in report["dp"]["cell"] and report["dp_over_nodp_train_seconds"] > 0


GRID_LOG = """
[Mon Nov 30 01:27:25 2026]
localrule train_cell:
    input: results/partitions/s/seed0
    jobid: 7
    wildcards: scenario=s, mode=federated, algorithm=fedavg, dp=nodp, seed=0
    resources: tmpdir=/tmp, gpu=1
[Mon Nov 30 01:27:26 2026]
localrule train_cell:
    jobid: 8
    wildcards: scenario=s, mode=local, algorithm=fedavg, dp=all-eps1-delta1e-05-clip1, seed=0
    resources: tmpdir=/tmp, gpu=1

[Mon Nov 30 01:27:29 2026]
localrule partition:
    jobid: 9

[Mon Nov 30 01:27:54 2026]
Finished jobid: 7 (Rule: train_cell)
[Mon Nov 30 01:27:55 2026]
Finished jobid: 9 (Rule: partition)
"""


def test_grid_throughput_reads_cell_times_from_the_snakemake_log():
    sys.path.insert(0, str(REPO / "benchmarks" / "gpu"))
    from grid_throughput import cell_times, summary

    cells = cell_times(GRID_LOG).set_index("jobid")
    # the partition job is not a cell; job 8's block follows job 7's without a blank line, as
    # Snakemake writes two jobs started in the same second
    assert list(cells.index) == [7, 8]
    assert cells.loc[7, "seconds"] == 29 and pd.isna(cells.loc[8, "finish"])  # 8 never finished
    assert cells.loc[8, "private"] and cells.loc[8, "mode"] == "local"
    report = summary(cells.reset_index(), slots=14)
    assert report["cells_finished"] == 1 and report["window_seconds"] == 29
    assert report["cells_per_hour"] == 3600 / 29 and report["dp"] == {"cells": 0}


def test_bench_grid_splits_a_cells_process_time_into_training_and_the_rest(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_grid import measure

    key = "s/federated/fedavg/nodp/seed0"  # job 7 of GRID_LOG
    bench = tmp_path / "results" / "benchmarks" / "train_cell" / f"{key}.tsv"  # the layout before datasets
    log = tmp_path / "results" / "fashion_mnist" / "logs" / "train_cell" / f"{key}.log"  # and after
    for path in (bench, log):
        path.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\n29.50\t0:00:29\n")
    log.write_text("... INFO cell Cell(...): trained in 21.25s\n")
    report = measure(tmp_path, GRID_LOG, cores=2)
    # job 7 finished and has both files; job 8 never finished
    assert report["median_process_s"] == 29.5 and report["median_train_s"] == 21.25
    assert report["median_outside_training_s"] == 8.25
    assert report["outside_training_share"] == 8.25 / 29.5
