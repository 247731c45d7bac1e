"""Code hygiene the CI enforces: ruff (check + format), snakefmt, snakemake --lint."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)


@pytest.mark.parametrize(
    "cmd",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("snakefmt", "--check", "Snakefile", "rules"),
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_formatters_and_linters_pass(cmd):
    done = run(sys.executable, "-m", *cmd)
    assert done.returncode == 0, done.stdout + done.stderr


def test_snakemake_lint_is_clean():
    done = run(sys.executable, "-m", "snakemake", "--lint")
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Congratulations" in out, out
