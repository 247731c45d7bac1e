#!/usr/bin/env bash
# Real SLURM test: start a one-node SLURM cluster on this machine, build one target of the
# quick DAG (config/quick.yaml; default results/fashion_mnist/fig1.svg, its 6 training cells;
# from pytest one federated cell) through profiles/slurm, and check that every cell it trained
# equals the same cell of a local build: one given in FEDHET_SLURM_REFERENCE (the workflow
# tests' build), or else one made here.
#
#   sudo tests/slurm/run_slurm_test.sh          # or: FEDHET_SLURM_TEST=1 pytest -m slurm
#
# Needs root on Debian/Ubuntu (installs slurm-wlm and munge with apt-get when missing);
# elsewhere it prints "SKIPPED: ..." and exits 0. Environment:
#   FEDHET_PYTHON          python with fedhet's dependencies and snakemake (default .venv/bin/python)
#   FEDHET_DATA_MIRROR     passed on to the workflow (directory with the FashionMNIST files)
#   FEDHET_SLURM_TIMEOUT   seconds allowed for each workflow run (default 1800)
#   FEDHET_SLURM_KEEP=1    keep the work directory (repo copies, slurm.conf, daemon logs)
#   FEDHET_SLURM_CPUS      CPUs of the test node (default: nproc)
#   FEDHET_SLURM_TARGET    what to build through SLURM (default results/fashion_mnist/fig1.svg)
#   FEDHET_SLURM_REFERENCE a directory holding a local build of the quick DAG to compare with
# The cluster is the test's own: state directory and logs in a temporary directory, free TCP
# ports, and /etc/slurm/slurm.conf, which the test writes and removes again. (A private
# SLURM_CONF does not work: snakemake-executor-plugin-slurm-jobstep drops every SLURM_*
# variable before its srun, so srun inside a job reads the default path.) Where a slurm.conf
# the test did not write exists, the test skips rather than touch that cluster. The daemons
# are stopped on exit; munged too when the test started it.
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${FEDHET_PYTHON:-$REPO/.venv/bin/python}
TIMEOUT=${FEDHET_SLURM_TIMEOUT:-1800}
TARGET=${FEDHET_SLURM_TARGET:-results/fashion_mnist/fig1.svg}
REFERENCE=${FEDHET_SLURM_REFERENCE:-}

skip() {
    echo "SKIPPED: $*"
    OK=1 # nothing to keep for inspection
    exit 0
}
fail() {
    echo "FAILED: $*" >&2
    exit 1
}
log() { echo "[slurm-test $(date +%H:%M:%S)] $*"; }

# --- preconditions -------------------------------------------------------------------------
[[ $(id -u) == 0 ]] || skip "needs root (installs slurm-wlm/munge and starts slurmctld, slurmd, munged)"
[[ -x $PY ]] || skip "no python at $PY (set FEDHET_PYTHON)"
"$PY" -c "import snakemake, snakemake_executor_plugin_slurm, pandas" 2>/dev/null ||
    skip "$PY lacks snakemake, snakemake-executor-plugin-slurm or pandas"
VENV_BIN=$(dirname "$PY")
[[ -x $VENV_BIN/snakemake ]] || skip "no snakemake next to $PY"

need=()
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v slurmd >/dev/null || need+=(slurmd)
command -v sbatch >/dev/null || need+=(slurm-client)
command -v munged >/dev/null || need+=(munge)
if ((${#need[@]})); then
    command -v apt-get >/dev/null || skip "${need[*]} missing and no apt-get to install them"
    log "installing ${need[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/tmp/fedhet-slurm-apt.log 2>&1; then
        tail -5 /tmp/fedhet-slurm-apt.log
        skip "could not install ${need[*]} with apt-get (log: /tmp/fedhet-slurm-apt.log)"
    fi
fi
for tool in slurmctld slurmd sbatch squeue scontrol sinfo srun munged munge unmunge; do
    command -v "$tool" >/dev/null || skip "$tool not found after installing slurm-wlm and munge"
done

CONF=/etc/slurm/slurm.conf
MARKER="# one-node test cluster written by tests/slurm/run_slurm_test.sh"
if [[ -e $CONF ]] && ! grep -qxF "$MARKER" "$CONF"; then
    skip "$CONF exists and was not written by this test: not touching a configured cluster"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fedhet-slurm-test.XXXXXX")
chmod 755 "$WORK"
CLUSTER=$WORK/cluster
mkdir -p "$CLUSTER"/{ctld,spool}
STARTED_MUNGE=""
WROTE_CONF=0
OK=0

cleanup() {
    set +e
    if ((WROTE_CONF)); then
        mapfile -t ids < <(squeue -h -o %i 2>/dev/null)
        ((${#ids[@]})) && scancel "${ids[@]}" 2>/dev/null
    fi
    for pidfile in "$CLUSTER/slurmd.pid" "$CLUSTER/slurmctld.pid" $STARTED_MUNGE; do
        [[ -f $pidfile ]] || continue
        pid=$(cat "$pidfile")
        [[ -n $pid ]] || continue
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
    done
    if ((WROTE_CONF)); then
        cp "$CONF" "$CLUSTER/slurm.conf" 2>/dev/null
        grep -qxF "$MARKER" "$CONF" 2>/dev/null && rm -f "$CONF"
    fi
    if ((OK)) && [[ ${FEDHET_SLURM_KEEP:-0} != 1 ]]; then
        rm -rf "$WORK"
    else
        echo "work directory kept: $WORK (cluster logs in $CLUSTER)"
    fi
}
trap cleanup EXIT

# --- munge ---------------------------------------------------------------------------------
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running"
else
    id munge >/dev/null 2>&1 || skip "no munge user (the munge package creates it)"
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge /var/lib/munge /var/log/munge
    chmod 0400 /etc/munge/munge.key
    chmod 0755 /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- munged || fail "munged did not start"
    STARTED_MUNGE=/run/munge/munged.pid
    for _ in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n | unmunge >/dev/null || fail "munge does not work after starting munged"
    log "munged started (pid $(cat /run/munge/munged.pid))"
fi

# --- one-node cluster ----------------------------------------------------------------------
HOST=$(hostname -s)
CPUS=${FEDHET_SLURM_CPUS:-$(nproc)}
MEM_TOTAL=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
MEM=$((MEM_TOTAL * 8 / 10)) # RealMemory above the real one would drain the node
read -r CTLD_PORT SLURMD_PORT < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
mkdir -p /etc/slurm
WROTE_CONF=1
cat >"$CONF" <<EOF
$MARKER
ClusterName=fedhettest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$CLUSTER/ctld
SlurmdSpoolDir=$CLUSTER/spool
SlurmctldPidFile=$CLUSTER/slurmctld.pid
SlurmdPidFile=$CLUSTER/slurmd.pid
SlurmctldLogFile=$CLUSTER/slurmctld.log
SlurmdLogFile=$CLUSTER/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/pgid
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue (the status command without accounting) sees a finished job for MinJobAge seconds
MinJobAge=300
ReturnToService=2
SlurmdTimeout=120
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
log "starting slurmctld and slurmd ($HOST: $CPUS CPUs, $MEM MB; ports $CTLD_PORT/$SLURMD_PORT)"
slurmctld -f "$CONF" || fail "slurmctld did not start (see $CLUSTER/slurmctld.log)"
slurmd -f "$CONF" || fail "slurmd did not start (see $CLUSTER/slurmd.log)"
state=""
for _ in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
    [[ $state == idle ]] && break
    [[ $state == down* || $state == drain* ]] && scontrol update nodename="$HOST" state=resume 2>/dev/null
    sleep 1
done
[[ $state == idle ]] || {
    tail -20 "$CLUSTER/slurmctld.log" "$CLUSTER/slurmd.log" >&2
    fail "node $HOST is '$state', not idle"
}
out=$(srun -N1 -n1 --mem=100 -t 1 hostname 2>&1) || fail "srun smoke test failed: $out"
log "cluster up: srun ran on $out"

# --- two copies of the working tree --------------------------------------------------------
copy_tree() { # the working tree (tracked and untracked, not ignored) without results/ or .venv
    mkdir -p "$1"
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
            tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$1"
    else
        tar -C "$REPO" --exclude=./results --exclude=./.venv --exclude=./.snakemake \
            --exclude=./.git -cf - . | tar -xf - -C "$1"
    fi
    rm -rf "$1/results" "$1/.snakemake"
}
LOCAL=${REFERENCE:-$WORK/local}
CLUSTERRUN=$WORK/slurm
[[ -n $REFERENCE ]] || copy_tree "$LOCAL"
copy_tree "$CLUSTERRUN"
[[ -f $LOCAL/config/quick.yaml && -f $CLUSTERRUN/profiles/slurm/config.yaml ]] ||
    fail "copies lack config/quick.yaml or profiles/slurm/config.yaml"

export PATH=$VENV_BIN:$PATH
# Each run imports its own copy of fedhet (the venv may hold an editable install of $REPO).
run_in() { (cd "$1" && shift && PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} timeout "$TIMEOUT" "$@"); }

# Same rules, threads and resources from the profile in both runs; only the executor differs.
# The profile's `cores` caps a job's threads and a group job's CPUs; a node with fewer CPUs
# lowers the cap (in both runs, so that the cells train with the same thread count).
COMMON=("$TARGET" --workflow-profile profiles/slurm --configfile config/quick.yaml)
PROFILE_CORES=$("$PY" -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])) or {}).get("cores") or 0)' \
    "$CLUSTERRUN/profiles/slurm/config.yaml")
if ((PROFILE_CORES == 0 || PROFILE_CORES > CPUS)); then
    COMMON+=(--cores "$CPUS")
fi

# The SLURM run first: it is the one more likely to fail.
log "SLURM run in $CLUSTERRUN"
t0=$(date +%s)
run_in "$CLUSTERRUN" snakemake "${COMMON[@]}" --resources mem_mb="$MEM" \
    --slurm-no-account --slurm-status-command squeue \
    --slurm-init-seconds-before-status-checks 5 --seconds-between-status-checks 2 --slurm-keep-successful-logs \
    >"$WORK/slurm.log" 2>&1 || {
    tail -60 "$WORK/slurm.log" >&2
    fail "SLURM run failed (log: $WORK/slurm.log; cluster logs: $CLUSTER)"
}
t1=$(date +%s)
SLURM_S=$((t1 - t0))
log "SLURM run finished in $SLURM_S s"

if [[ -n $REFERENCE ]]; then
    log "comparing with the local build in $REFERENCE"
    LOCAL_S=0
else
    log "local run in $LOCAL"
    # Locally, without the cluster profile: its groups are for SLURM (the local executor does not
    # throttle a group's cells to --cores). Threads per cell are the same (1) either way.
    run_in "$LOCAL" snakemake "$TARGET" --configfile config/quick.yaml --cores "$CPUS" >"$WORK/local.log" 2>&1 || {
        tail -40 "$WORK/local.log" >&2
        fail "local run failed (log: $WORK/local.log)"
    }
    LOCAL_S=$(($(date +%s) - t1))
    log "local run finished in $LOCAL_S s"
fi

# --- checks ------------------------------------------------------------------------------
n_submitted=$(grep -o "has been submitted with SLURM jobid [0-9]*" "$WORK/slurm.log" | sort -u | wc -l)
((n_submitted > 0)) || fail "no job went through SLURM (see $WORK/slurm.log)"
n_cells=$(find "$CLUSTERRUN/.snakemake/slurm_logs" -name '*.log' \( -path '*group_cells*' -o -path '*train_cell*' \) 2>/dev/null | wc -l)
((n_cells > 0)) || fail "no training cell ran as a SLURM job (see $CLUSTERRUN/.snakemake/slurm_logs)"
log "$n_submitted SLURM jobs submitted, $n_cells of them training-cell jobs"

"$PY" - "$LOCAL" "$CLUSTERRUN" "$TARGET" <<'EOF' || fail "SLURM and local results differ"
import sys
from pathlib import Path

import pandas as pd

local, slurm, target = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
cells = sorted((slurm / "results" / "fashion_mnist" / "cells").rglob("metrics.parquet"))
if not cells:
    sys.exit("the SLURM run trained no cell")
for path in cells:
    reference = local / path.relative_to(slurm)
    if not reference.exists():
        sys.exit(f"{reference} is missing from the local build")
    pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(reference), check_exact=True)
print(f"{len(cells)} cells trained through SLURM, each identical to the local build's")
if not (slurm / target).exists():
    sys.exit(f"SLURM run lacks {target}")
EOF

{
    echo "slurm-wlm $(dpkg-query -W -f='${Version}' slurm-client 2>/dev/null || sinfo --version)"
    echo "node: $CPUS CPUs, $MEM MB"
    echo "local run: $LOCAL_S s (0: compared with a given build)"
    echo "SLURM run: $SLURM_S s, $n_submitted SLURM jobs"
} | tee "$WORK/timings.txt"
OK=1
echo "PASSED: $TARGET through SLURM ($SLURM_S s) gives the same cells as the local build"
