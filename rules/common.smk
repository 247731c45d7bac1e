# Helpers shared by the rules: config slices, cell expansion, and input functions.
import fedhet.privacy.audit as fa
import fedhet.workflow.config as fc
import fedhet.workflow.experiments as fx
import fedhet.workflow.figure_specs as ff
import fedhet.workflow.keys as fk
from fedhet.workflow.algorithms import AlgorithmSpec
from fedhet.data.datasets import dataset_spec
from fedhet.workflow.specs import CanarySpec
from fedhet.analysis.tables import study_reference

# An infeasible grid point stops here, naming it, before any job is scheduled.
fx.check_experiments(config)
fa.check_audit(config)
CORE_CELLS = fc.core_cells(config)
EXPERIMENT_CELLS = fx.all_experiment_cells(config)
CORE_KEYS = {cell.key() for cell in CORE_CELLS}
ALL_CELLS = fx.unique(CORE_CELLS + EXPERIMENT_CELLS)
SWEEPS = [name for name, spec in config["experiments"].items() if spec["grid"]]
SWEEP_CELLS = fx.unique(
    [c for name in SWEEPS for c in fx.experiment_cells(config, name)]
)
SELECTION_CELLS = fx.validation_cells(config, tuning=False)  # algorithms chosen
TUNING_CELLS = fx.validation_cells(
    config, tuning=True
)  # lr and C chosen per DP setting, on public proxies or private validation splits
CHARGED_CELLS = fx.charged_cells(config)  # chosen privately: their tuning is charged
FIGURES = ff.configured_figures(config)
RESULTS = fc.results_root(config)  # results/[<run>/]<dataset>
AUDIT_CELLS = fa.audit_cells(config)  # canaries planted: never part of a figure
ENGINE_AUDITS = fa.engine_audits(config)  # gradient canaries: the DP-SGD engine alone


wildcard_constraints:
    scenario=r"[a-z][a-z0-9_.x\-]*r[0-9.e\-]+(_[a-z]+[1-5])?",
    mode="federated|local|large_only",
    algorithm=r"[a-z]+(-[a-z]+[0-9.e+\-]+)*",
    dp=r"[A-Za-z0-9_.\-]+",
    optim=r"lr[0-9.e+\-]+",
    seed=r"\d+(-validation|-public)?",
    beta=r"[0-9.e\-]+",
    dataset=r"[a-z_]+",
    filename=r"[^/]+",
    n="|".join(str(n) for n in sorted(ff.FIGURES, reverse=True)),
    canaries=r"canaries-[a-z][a-z0-9_]*-m[0-9]+",
    m=r"[0-9]+",
    number="|".join(str(n) for n in sorted([1, *ff.FIGURES], reverse=True)),


def raw_files(wildcards=None):
    spec = dataset_spec(config["data"]["dataset"])
    return [f"{fc.DOWNLOADS}/{spec.name}/{name}" for name in spec.files]


def external_file():
    return f"{RESULTS}/data/external.parquet"


def canary_file(wildcards):
    count = CanarySpec.parse(wildcards.canaries).count
    return fk.CANARIES.path(
        RESULTS, scenario=wildcards.scenario, seed=wildcards.seed, m=count
    )


def evaluation_params(wildcards):
    """Per-round metrics cost about a sixth of a cell and only the budget table reads them,
    from the core cells: every other cell evaluates once, after its last round."""
    key = f"{wildcards.scenario}/{wildcards.mode}/{wildcards.algorithm}/{wildcards.dp}/{wildcards.optim}/seed{wildcards.seed}"
    every_round = config["evaluation"]["every_round"] and key in CORE_KEYS
    return {**config["evaluation"], "every_round": every_round}


def training_params():
    """The training slice without the learning rate: a cell's rate is its path's optimiser key
    (fedhet.workflow.specs.OptimSpec), so a config's new rate makes new cells instead of retraining old ones.
    """
    return {k: v for k, v in config["training"].items() if k != "lr"}


def privacy_params(wildcards):
    return config["privacy"] if wildcards.dp != "nodp" else {}


def gpu_slots():
    """GPU slots a training cell reserves: one with device cuda. auto reserves none (on a
    cluster the slot becomes a --gpus request, which auto must not make)."""
    return 1 if config["device"] == "cuda" else 0


def cell_metrics(cells):
    return [f"{cell.directory(RESULTS)}/metrics.parquet" for cell in cells]


def cell_privacy(cells):
    return [f"{cell.directory(RESULTS)}/privacy.parquet" for cell in cells]


def cell_rounds(cells):
    return [f"{cell.directory(RESULTS)}/rounds.parquet" for cell in cells]


def cell_benchmarks(cells):
    return [
        fk.CELL.benchmark(RESULTS, "train_cell").format(**c.fields()) for c in cells
    ]


def partition_manifests(cells):
    return sorted({f"{cell.partitions(RESULTS)}" for cell in cells})


def shared_input(wildcards):
    """The shared public set G, for the algorithms that train on one (else nothing)."""
    spec = AlgorithmSpec.parse(wildcards.algorithm)
    if not spec.info.needs_shared_data:
        return {}
    path = fk.SHARED.path(
        RESULTS,
        scenario=wildcards.scenario,
        seed=wildcards.seed,
        beta=f"{spec['beta']:g}",
    )
    return {"shared": path}


def figure_inputs(wildcards, cell_files=cell_metrics):
    """A figure's cells and, where a privacy figure draws privately tuned settings, their
    tuning charges (fedhet.analysis.tuning)."""
    number = int(wildcards.n)
    inputs = {"cells": cell_files(ff.figure_cells(config, number))}
    if any(t == "validation" for t, _ in ff.figure_variants(config, number)):
        inputs["charges"] = f"{RESULTS}/tables/tuning_charge.csv"
    return inputs


def fairness_inputs(wildcards):
    number = int(wildcards.n)
    if number not in ff.REMEDY_FIGURES:
        raise ValueError(
            f"tables/fairness_fig{number}.csv: only remedy figures {sorted(ff.REMEDY_FIGURES)} have one"
        )
    return cell_metrics(ff.figure_cells(config, number))


def participation_inputs(wildcards):
    cells = ff.figure_cells(config, int(wildcards.n))
    return {"rounds": cell_rounds(cells), "metrics": cell_metrics(cells)}


def figure_privacy_inputs(wildcards):
    return figure_inputs(wildcards, cell_privacy)


def figure_variants(wildcards):
    """(tuning, mode, dp, optim) of each cell a figure draws (fedhet.workflow.experiments.TUNINGS)."""
    return [
        {"tuning": t, "mode": c.mode, "dp": c.dp, "optim": c.optim}
        for t, c in ff.figure_variants(config, int(wildcards.n))
    ]


def sweeps_param():
    """Each sweep's grid and scenario keys: what the trend table groups cells by."""
    scenarios = fx.experiment_scenarios(config)
    return {
        name: {
            "grid": config["experiments"][name]["grid"],
            "scenarios": scenarios[name],
        }
        for name in SWEEPS
    }


def experiment_cells_param():
    """Each experiment's cells by key: what the cost table counts."""
    return {
        name: [c.key() for c in fx.experiment_cells(config, name)]
        for name in config["experiments"]
    }


def experiment_outputs():
    outputs = [f"{RESULTS}/fig{n}.svg" for n in FIGURES]
    # each privacy figure's privacy rows: what every private hospital in it spent
    outputs += [
        f"{RESULTS}/tables/privacy_fig{n}.csv"
        for n in FIGURES
        if ff.has_privacy_rows(n)
    ]
    # each remedy figure's fairness view
    outputs += [
        f"{RESULTS}/tables/fairness_fig{n}.csv"
        for n in FIGURES
        if n in ff.REMEDY_FIGURES
    ]
    # with client sampling, who took part in each cell of the layout figures
    if config["training"]["client_fraction"] < 1:
        outputs += [
            f"{RESULTS}/tables/participation_fig{n}.csv"
            for n in FIGURES
            if n in ff.MODE_FIGURES
        ]
    if SWEEPS:
        outputs.append(f"{RESULTS}/tables/trends.csv")
    if config["experiments"]:
        outputs.append(f"{RESULTS}/tables/cost.csv")
    if SELECTION_CELLS:
        outputs.append(f"{RESULTS}/tables/selection.csv")
    if TUNING_CELLS:
        outputs.append(f"{RESULTS}/tables/dp_selection.csv")
    if AUDIT_CELLS:
        outputs.append(f"{RESULTS}/tables/audit.csv")
    if ENGINE_AUDITS:
        outputs.append(f"{RESULTS}/tables/engine_audit.csv")
    return outputs


def all_outputs():
    return [
        f"{RESULTS}/metrics.parquet",
        *[
            f"{RESULTS}/tables/table{i}.{ext}"
            for i in (1, 2, 3)
            for ext in ("csv", "md")
        ],
        f"{RESULTS}/fig1.svg",
        f"{RESULTS}/tables/runtime.csv",
        f"{RESULTS}/tables/budget.csv",
        f"{RESULTS}/tables/privacy.csv",
        *experiment_outputs(),
    ]
