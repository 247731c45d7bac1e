"""The reproducibility contract: every cell records its machine (fedhet.analysis.provenance), and
`fedhet repro-check` reruns the cells behind a committed table and reports the deviation
(fedhet.analysis.repro): 0 on the machine that built it, exactly a perturbation where one was made, and
a missing row as a structural error."""

from __future__ import annotations

import json
import math
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import OUT, TINY_CONFIG, copy_workflow
from fedhet.analysis.provenance import FIELDS, collect, cpu_model, provenance_table
from fedhet.analysis.repro import compare_tables
from fedhet.cli import main
from fedhet.training.cell import run_cell
from fedhet.workflow.config import Cell

TABLES = ("table2.csv", "table3.csv")


def test_provenance_fields_describe_this_process():
    record = collect()
    assert tuple(record) == FIELDS
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["torch_version"] == torch.__version__
    assert record["threads"] == torch.get_num_threads()
    assert record["python_version"] == platform.python_version()
    assert isinstance(record["cpu_model"], str) and record["cpu_model"]


def test_cpu_model_reads_cpuinfo_and_falls_back_to_platform(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654 96-Core\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 9654 96-Core"
    assert cpu_model(tmp_path / "absent") == (platform.processor() or platform.machine() or "unknown")


def test_provenance_imports_no_torch():
    """The Snakefile and rules import fedhet modules: provenance must not pull torch in."""
    code = "import sys, fedhet.analysis.provenance, fedhet.analysis.repro; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_provenance_table_counts_cells_per_machine_and_build(tmp_path):
    records = [
        {"cpu_model": "A", "cpu_capability": "AVX2", "torch_version": "2.0", "threads": 1, "python_version": "3"},
        {"cpu_model": "A", "cpu_capability": "AVX2", "torch_version": "2.0", "threads": 2, "python_version": "3"},
        {"cpu_model": "B", "cpu_capability": "AVX512", "torch_version": "2.0", "threads": 1, "python_version": "3"},
    ]
    paths = []
    for i, record in enumerate(records):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(record))
    paths.append(tmp_path / "written-before-provenance.json")  # absent: counted as unknown
    table = provenance_table(paths).set_index("cpu_model")
    assert table["n_cells"].to_dict() == {"A": 2, "B": 1, "unknown": 1}
    assert table.loc["A", "threads"] == "1;2" and table.loc["B", "cpu_capability"] == "AVX512"


def test_a_cell_writes_its_provenance_beside_its_metrics(tmp_path, tiny_partitions):
    scenario, parts = tiny_partitions
    out = tmp_path / "cell"
    run_cell(
        TINY_CONFIG, Cell(scenario.key(), "federated", 0, "nodp"), parts, None, out / "m.parquet", out / "r.parquet"
    )
    record = json.loads((out / "provenance.json").read_text())
    assert record == {**collect(), "threads": 1}  # the thread count the cell trained with


# The reviewer's rerun of PneumoniaMNIST's Table 3 on another CPU (README, "Reproducibility").
COMMITTED = pd.DataFrame(
    {
        "metric": ["recall", "precision", "auroc"],
        "federated_mean": [0.4125, 0.957407, 0.964219],
        "large_only_mean": [0.875, 0.519615, 0.973594],
        "large_only_seeds": [10, 10, 10],
    }
)


def test_comparison_reports_the_largest_deviation_and_its_row():
    rerun = COMMITTED.copy()
    rerun.loc[2, "federated_mean"] = 0.964375
    rerun.loc[1, "large_only_mean"] = 0.5285
    result = compare_tables("table3", COMMITTED, rerun)
    assert result.structural == []
    rows = {r["column"]: r for r in result.rows}
    assert rows["federated_mean"]["row"] == "metric=auroc"
    assert rows["federated_mean"]["max_abs_deviation"] == pytest.approx(0.000156, abs=1e-12)
    assert rows["large_only_mean"]["row"] == "metric=precision"
    assert rows["large_only_mean"]["max_abs_deviation"] == pytest.approx(0.008885, abs=1e-12)
    assert rows["large_only_seeds"]["max_abs_deviation"] == 0 and rows["large_only_seeds"]["row"] == ""


def test_comparison_treats_undefined_values_and_missing_rows():
    committed = COMMITTED.assign(local_mean=[0.0, math.nan, 0.5])
    rerun = committed.copy()
    assert {r["max_abs_deviation"] for r in compare_tables("t", committed, rerun).rows} == {0.0}  # NaN = NaN
    rerun.loc[1, "local_mean"] = 0.3  # defined in one table only: infinitely far
    assert (
        next(r for r in compare_tables("t", committed, rerun).rows if r["column"] == "local_mean")["max_abs_deviation"]
        == math.inf
    )
    structural = compare_tables("t", committed, committed.drop(index=1).drop(columns="local_mean")).structural
    assert structural == [
        "t: missing column 'local_mean' in the rerun",
        "t: row 'metric=precision' missing from the rerun",
    ]


# ---- at quick scale: a quick build's tables are the committed ones, the check reruns them ----


@pytest.fixture(scope="module")
def rerun(quick_build, fashion_mirror, tmp_path_factory) -> dict:
    """The quick build's Tables 2–3 "committed" in a directory of their own, and the check run
    once against them from a fresh copy of the workflow (it retrains the 6 core cells)."""
    committed = tmp_path_factory.mktemp("committed")
    for name in TABLES:
        shutil.copy(quick_build / OUT / "tables" / name, committed / name)
    workdir = copy_workflow(tmp_path_factory.mktemp("rerun"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEDHET_DATA_MIRROR", str(fashion_mirror))
        report = workdir / "repro_check.csv"
        code = check(workdir, [committed / name for name in TABLES], report, reuse=False)
    return {"committed": committed, "workdir": workdir, "code": code, "report": report, "mirror": fashion_mirror}


def check(workdir: Path, tables: list[Path], out: Path, reuse: bool = True, *extra: str) -> int:
    args = ["repro-check", "--config", "config/quick.yaml", "--out", str(out), "--workdir", str(workdir)]
    args += [a for t in tables for a in ("--table", str(t))] + ["--cores", "2"]
    return main([*args, *(["--reuse"] if reuse else []), *extra])


def rerun_check(rerun: dict, tables: list[Path], out: Path, *extra: str) -> int:
    """The check again on the cells the first one trained (``--reuse``): only the tables differ."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEDHET_DATA_MIRROR", str(rerun["mirror"]))
        return check(rerun["workdir"], tables, out, True, *extra)


@pytest.mark.slow
def test_cells_and_the_aggregate_record_their_provenance(quick_build):
    results = quick_build / OUT
    cells = sorted((results / "cells").rglob("metrics.parquet"))
    for path in cells:
        assert json.loads((path.parent / "provenance.json").read_text())["threads"] == 1
    table = pd.read_csv(results / "tables" / "provenance.csv")
    assert len(table) == 1 and table["n_cells"].tolist() == [len(cells)]
    assert table.loc[0, "cpu_capability"] == collect()["cpu_capability"]


@pytest.mark.slow
def test_same_machine_rerun_reproduces_the_tables_bit_for_bit(rerun, quick_build):
    assert rerun["code"] == 0
    report = pd.read_csv(rerun["report"])
    assert set(report["table"]) == {"table2", "table3"} and (report["status"] == "ok").all()
    assert (report["max_abs_deviation"] == 0).all()
    assert (report["n_rows"] == 5).all()  # the five headline metrics
    machine = collect()
    for field in ("cpu_model", "cpu_capability", "torch_version", "python_version"):
        assert (report[field].astype(str) == str(machine[field])).all(), field
    assert (report["threads"] == 1).all()  # the cells' thread count, not this process's
    built = rerun["workdir"] / "results" / "repro-check" / "fashion_mnist" / "tables"
    for name in TABLES:  # rebuilt beside, not over, and equal byte for byte
        assert (built / name).read_bytes() == (quick_build / OUT / "tables" / name).read_bytes()


@pytest.mark.slow
def test_a_perturbed_committed_value_shows_as_exactly_that_deviation_at_its_row(rerun, tmp_path):
    tables = [tmp_path / name for name in TABLES]
    for path in tables:
        shutil.copy(rerun["committed"] / path.name, path)
    table = pd.read_csv(tables[0])
    original = table.loc[table["metric"] == "auroc", "federated_mean"].item()
    table.loc[table["metric"] == "auroc", "federated_mean"] = original + 0.0125
    table.to_csv(tables[0], index=False)
    out = tmp_path / "report.csv"
    assert rerun_check(rerun, tables, out) == 0  # a deviation is reported, not judged
    report = pd.read_csv(out).set_index(["table", "column"])
    row = report.loc[("table2", "federated_mean")]
    assert row["row"] == "metric=auroc" and row["max_abs_deviation"] == pytest.approx(0.0125, abs=1e-9)
    assert row["committed"] == pytest.approx(original + 0.0125) and row["rerun"] == pytest.approx(original)
    assert (report.drop(index=("table2", "federated_mean"))["max_abs_deviation"] == 0).all()
    assert rerun_check(rerun, tables, out, "--tolerance", "0.01") == 1  # with a tolerance it fails…
    assert pd.read_csv(out).query("status == 'above tolerance'")["column"].tolist() == ["federated_mean"]
    assert rerun_check(rerun, tables, out, "--tolerance", "0.02") == 0  # …only above it


@pytest.mark.slow
def test_a_missing_row_is_a_structural_error(rerun, tmp_path, capsys):
    path = tmp_path / "table3.csv"
    table = pd.read_csv(rerun["committed"] / "table3.csv")
    table.loc[table["metric"] == "specificity", "metric"] = "f1"  # a row the rerun cannot build…
    table.to_csv(path, index=False)
    out = tmp_path / "report.csv"
    assert rerun_check(rerun, [path], out) == 1
    expected = [
        "table3: row 'metric=f1' missing from the rerun",
        "table3: row 'metric=specificity' in the rerun only",  # …and one it builds that is not committed
    ]
    err = capsys.readouterr().err
    assert all(line in err for line in expected)
    report = pd.read_csv(out)
    assert report.loc[report["status"] == "structural", "detail"].tolist() == expected
    assert (report.loc[report["status"] == "ok", "max_abs_deviation"] == 0).all()  # the common rows still compared
