"""profiles/slurm: a dry run always; the real one-node SLURM cluster test on request.

FEDHET_SLURM_TEST=1 pytest -m slurm tests/slurm      # as root on Debian/Ubuntu
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("run_slurm_test.sh")
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_profile_dry_run(tmp_path):
    """The profile parses, and the quick DAG plans with it: grouped cells, no SLURM needed."""
    if not SNAKEMAKE.exists():
        pytest.skip(f"no snakemake next to {sys.executable}")
    ignore = shutil.ignore_patterns("results", ".snakemake", ".venv", ".git", "__pycache__", "*.egg-info")
    for name in ("Snakefile", "rules", "scripts", "config", "fedhet", "profiles", "envs"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, tmp_path / name)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run(
        [str(SNAKEMAKE), "all", "--workflow-profile", "profiles/slurm", "--configfile", "config/quick.yaml", "-n"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Using workflow specific profile profiles/slurm" in out
    assert "rule train_cell:" in out
    groups = (yaml.safe_load(PROFILE.read_text()) or {}).get("groups") or {}
    if groups.get("train_cell"):
        assert f"Group job {groups['train_cell']}" in out, "train_cell jobs were not grouped"


@pytest.mark.slurm
@pytest.mark.slow
def test_quick_dag_through_slurm_matches_local_run(request):
    if os.environ.get("FEDHET_SLURM_TEST") != "1":
        pytest.skip(
            "set FEDHET_SLURM_TEST=1 to start a one-node SLURM cluster (needs root on Debian/Ubuntu) "
            "and compare the quick DAG run through profiles/slurm with a local run"
        )
    env = dict(os.environ)
    env.setdefault("FEDHET_PYTHON", sys.executable)
    # Compare with the build the workflow tests make (one quick DAG per session, not two more).
    reference = request.getfixturevalue("quick_build")
    env["FEDHET_SLURM_REFERENCE"] = str(reference)
    # One federated cell through SLURM is what the test is about (submission, the job step, the
    # cell's output equal to the local one); more cells would only cost CI time.
    cells = sorted((reference / "results").glob("*/cells/*/federated/**/metrics.parquet"))
    assert cells, f"the quick build in {reference} has no federated cell"
    env.setdefault("FEDHET_SLURM_TARGET", str(cells[0].relative_to(reference)))
    per_run = int(env.get("FEDHET_SLURM_TIMEOUT", "1800"))
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=2 * per_run + 900)
    out = proc.stdout + proc.stderr
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED:")]
    if proc.returncode == 0 and skipped:
        pytest.skip(skipped[-1])
    assert proc.returncode == 0 and "PASSED:" in proc.stdout, out[-6000:]
    print(proc.stdout)


def test_profile_names_exactly_the_workflows_rules():
    """A renamed or new rule must not silently lose its thread setting on the cluster."""
    import re

    rules = {name for f in (ROOT / "rules").glob("*.smk") for name in re.findall(r"^rule (\w+):", f.read_text(), re.M)}
    profile = yaml.safe_load(PROFILE.read_text())
    assert set(profile["set-threads"]) == rules
    assert set(profile["set-resources"]) <= rules
