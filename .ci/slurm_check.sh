#!/usr/bin/env bash
# CI helper for the SLURM profile and the conda envs.
#   .ci/slurm_check.sh            cheap checks: env files vs pyproject, profile dry run, script syntax
#   FEDHET_SLURM_TEST=1 .ci/slurm_check.sh
#                                 also the real one-node SLURM cluster test (root on Debian/Ubuntu;
#                                 about 10 minutes on 2 cores; prints SKIPPED where it cannot run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${FEDHET_PYTHON:-.venv/bin/python}
if command -v shellcheck >/dev/null; then
    shellcheck tests/slurm/run_slurm_test.sh .ci/slurm_check.sh
fi
"$PY" -m pytest -q -rs tests/test_envs.py tests/slurm
