"""fedhet plan: a configuration's cells and their estimated cost, before any job."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_workflow, snakemake
from fedhet.analysis.plan import CellCost, plan_table, trained_images
from fedhet.cli import main
from fedhet.workflow.config import merged_config

QUICK = "large1x3000r0.5-small4x300r0.1"  # train splits: 2,400 and 4 × 240


@pytest.mark.parametrize(
    ("mode", "dp", "plain", "private"),
    [
        ("federated", "nodp", 2400 + 4 * 240, 0),
        ("local", "nodp", 2400 + 4 * 240, 0),
        ("large_only", "nodp", 2400, 0),  # the small hospitals only evaluate
        ("federated", "small_hospitals-eps1-delta1e-05-clip1", 2400, 4 * 240),
        ("large_only", "all-eps1-delta1e-05-clip1", 0, 2400),
        ("federated", "client_level-eps1-delta1e-05-clip1", 2400 + 4 * 240, 0),  # the server's noise
    ],
)
def test_a_cell_trains_each_training_hospitals_records_every_epoch(mode, dp, plain, private):
    assert trained_images(QUICK, mode, dp, epochs=2, test_fraction=0.2) == (2 * plain, 2 * private)


def test_a_validation_cell_trains_on_the_rest_of_the_training_records():
    plain, _ = trained_images(QUICK, "federated", "nodp", 1, 0.2, validation_fraction=0.2)
    assert plain == 1920 + 4 * 192


def test_cells_shared_by_experiments_are_counted_once():
    config = merged_config(["config/config.yaml", "config/quick.yaml"])
    table = plan_table(config, CellCost(overhead=1.0, plain_rate=1e9, dp_rate=1e9)).set_index("cells")
    assert table.loc["total", "n_cells"] == table["n_new"].iloc[:-1].sum()
    assert table.loc["fixed_count", "n_new"] < table.loc["fixed_count", "n_cells"]  # shares fixed_size's cells
    # with free training, the CPU time is the overhead of each cell that is trained once
    assert table.loc["total", "cpu_hours"] == pytest.approx(table.loc["total", "n_cells"] / 3600, rel=1e-3)


def test_a_dry_run_prints_the_plan_with_what_snakemake_schedules(tmp_path, fashion_mirror, capsys):
    workdir = copy_workflow(tmp_path)
    output = snakemake(workdir, "-n", "all", mirror=fashion_mirror)
    jobs = {rule: int(n) for rule, n in re.findall(r"^(train_cell|audit_cell|engine_audit)\s+(\d+)$", output, re.M)}
    total = re.compile(r"^\s+total\s+(\d+) cells\s+([0-9.]+) CPU h$", re.M)
    planned = total.search(output)
    assert planned and int(planned[1]) == sum(jobs.values()) and len(jobs) == 3
    assert "wall time on 2 cores: at least" in output
    # a figure the config cannot build is said, with its reason, never dropped in silence
    assert "fedhet: Figure 10 skipped: fig10: needs experiments.scanner_shift in the config" in output
    assert main(["plan", "--config", "config/quick.yaml", "--cores", "2"]) == 0
    assert total.search(capsys.readouterr().out).groups() == planned.groups()  # the CLI says the same


def test_a_missing_config_is_named(capsys):
    assert main(["plan", "--config", "config/none.yaml"]) == 2
    assert "config file config/none.yaml does not exist" in capsys.readouterr().err


def _page_number(page: str, pattern: str) -> int:
    text = " ".join((Path(__file__).resolve().parent.parent / page).read_text().split())
    match = re.search(pattern, text)
    assert match, f"{page} no longer says {pattern!r}"
    return int(match[1].replace(",", ""))


QUICK_SIZE = (r"(\d+) jobs, among them", r"among them (\d+) training cells")
MAIN_SIZE = (
    r"`snakemake -n all` lists ([\d,]+) jobs",
    r"`snakemake -n all` lists [\d,]+ jobs, among them (\d+) training cells",
)


@pytest.mark.parametrize(
    ("configs", "sizes", "planned"),
    [
        (["config/quick.yaml"], {"README.md": QUICK_SIZE, "docs/getting-started.md": QUICK_SIZE}, None),
        ([], {"README.md": MAIN_SIZE, "docs/getting-started.md": MAIN_SIZE}, r"prints .*?: (\d+) cells"),
    ],
)
def test_the_pages_run_sizes_are_what_a_dry_run_schedules(tmp_path, fashion_mirror, configs, sizes, planned):
    workdir = copy_workflow(tmp_path)
    args = [a for c in configs for a in ("--configfile", c)]
    output = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "all", "--cores", "8", *args],
        cwd=workdir,
        env={**os.environ, "FEDHET_DATA_MIRROR": str(fashion_mirror)},
        capture_output=True,
        text=True,
        check=True,
    )
    text = output.stdout + output.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", text, re.M))
    for page, (jobs, cells) in sizes.items():
        assert int(counts["total"]) == _page_number(page, jobs), page
        assert int(counts["train_cell"]) == _page_number(page, cells), page
    if planned:
        assert re.search(rf"^\s+total\s+{_page_number('README.md', planned)} cells", text, re.M)


def test_client_sampling_scales_what_a_federated_cell_trains():
    """Expected participation: C under Poisson sampling, ⌈C·K⌉/K under a fixed-size draw; a
    hospital training alone trains every round."""
    from fedhet.analysis.plan import participation

    assert participation(5, 0.25, "poisson") == 0.25 and participation(5, 0.25, "fixed") == 2 / 5
    assert participation(1, 0.25, "poisson") == 1.0
    full = trained_images(QUICK, "federated", "nodp", 10, 0.2)[0]
    assert trained_images(QUICK, "federated", "nodp", 10, 0.2, fraction=0.25, sampling="poisson")[0] == full / 4
    local = trained_images(QUICK, "local", "nodp", 10, 0.2)[0]
    assert trained_images(QUICK, "local", "nodp", 10, 0.2, fraction=0.25, sampling="poisson")[0] == local


def test_a_lone_client_trains_every_round_whatever_the_sampling():
    import numpy as np

    from fedhet.training.server import select_clients

    rng = np.random.default_rng(0)
    assert all(select_clients(1, 0.1, rng, "poisson") == [0] for _ in range(50))
