"""Heterogeneity sweeps: the ``experiments`` config expanded into scenarios and cells.

An experiment is a grid over fields of the core hospital groups, written ``<type>.<field>``
with field ``abnormal_ratio``, ``size``, ``count``, ``abnormal_count`` (a fixed number of
abnormal images: the size becomes count / ratio) or ``shift`` (a scanner shift key such as
``blur3``, or ``none``), times its training modes, its DP settings
(placements × ε, with δ and the clip norm) and its seeds. Every grid point replaces those
fields of the core ``hospitals`` and is one ``Scenario``; its cells are ordinary training
cells, so a cell shared by two experiments (or with the core grid) has one path and is
trained once.

Also owns the experiments with ``choices`` (settings stated one by one, chosen on tuning
cells, ``chosen_on``) and the tuning cells themselves. A cell's learning rate is part of its
key (``lr`` lists, ``fedhet.workflow.specs.OptimSpec``), like its DP setting. Which cells each figure
plots is ``fedhet.workflow.figure_specs``. Pure Python: the workflow imports it to build the DAG, and
rejects an infeasible grid, an impossible DP setting or an unknown algorithm before any job
runs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fedhet.data.datasets import dataset_spec
from fedhet.data.partition import HospitalGroup, PartitionError, Scenario, check_feasible
from fedhet.data.shift import ShiftSpec, normalise_shift
from fedhet.data.sources import pool_counts
from fedhet.workflow.algorithms import FEDAVG, AlgorithmSpec, canonical_key
from fedhet.workflow.config import Cell, ConfigError, optim_key
from fedhet.workflow.settings import setting_problem
from fedhet.workflow.specs import CLIENT_LEVEL, MODE_TAKES_ALGORITHM, DPSpec, OptimSpec, check_spec

# ``abnormal_count`` fixes a group's abnormal images per hospital (its size follows the ratio);
# ``total`` fixes its records over all its hospitals (its size follows the count).
GRID_FIELDS = ("abnormal_ratio", "size", "count", "abnormal_count", "total", "shift")


class ExperimentError(ConfigError):
    """An experiment's grid cannot be built; the message names the experiment and grid point."""


@dataclass(frozen=True)
class GridPoint:
    experiment: str
    values: tuple[tuple[str, float], ...]  # (grid key, value) in the config's order
    scenario: Scenario

    def label(self) -> str:
        return point_label(dict(self.values))


def point_label(values: dict[str, float | str]) -> str:
    return ", ".join(
        f"{key}={value:g}" if not isinstance(value, str) else f"{key}={value}" for key, value in values.items()
    )


def coordinate(scenario: Scenario, key: str) -> float:
    """The value of grid key ``<type>.<field>`` in a scenario (as drawn: sizes are integers)."""
    type_, field = key.split(".", 1)
    group = next((g for g in scenario.groups if g.type == type_), None)
    if group is None:
        raise ExperimentError(f"grid key {key!r}: scenario {scenario.key()} has no hospital type {type_!r}")
    if field == "abnormal_count":
        return group.n_abnormal
    if field == "total":
        return group.count * group.size
    if field == "shift":  # the shift's severity, 0 for none: a number to plot and regress on
        return ShiftSpec.parse(group.shift).severity if group.shift else 0
    return getattr(group, field)


def apply_point(hospitals: list[dict], values: dict[str, float], where: str) -> Scenario:
    """The core hospitals with the grid point's values in place."""
    groups = {h["type"]: dict(h) for h in hospitals}
    fixed_counts, totals = {}, {}
    for key, value in values.items():
        type_, _, field = key.partition(".")
        if type_ not in groups:
            raise ExperimentError(f"{where}: grid key {key!r} names hospital type {type_!r}, not in {sorted(groups)}")
        if field not in GRID_FIELDS:
            raise ExperimentError(f"{where}: grid key {key!r}: field {field!r} is not one of {GRID_FIELDS}")
        if field == "abnormal_count":
            fixed_counts[type_] = value
        elif field == "total":
            totals[type_] = value
        elif field == "shift":
            try:
                groups[type_]["shift"] = normalise_shift(value)
            except ValueError as err:
                raise ExperimentError(f"{where}: {err}") from None
        else:
            groups[type_][field] = value
    for type_, total in totals.items():
        if type_ in fixed_counts:
            raise ExperimentError(f"{where}: {type_}.total and {type_}.abnormal_count both set the size")
        groups[type_]["size"] = int(round(total / int(groups[type_]["count"])))
    for type_, count in fixed_counts.items():
        ratio = groups[type_]["abnormal_ratio"]
        if not 0 < ratio <= 1:
            raise ExperimentError(
                f"{where}: {type_}.abnormal_count {count:g} needs an abnormal_ratio in (0, 1], got {ratio:g}"
            )
        groups[type_]["size"] = int(round(count / ratio))
    return Scenario(
        tuple(
            HospitalGroup(
                g["type"], int(g["count"]), int(g["size"]), float(g["abnormal_ratio"]), normalise_shift(g.get("shift"))
            )
            for g in groups.values()
        )
    )


def grid_points(config: dict, name: str) -> list[GridPoint]:
    """Every grid point of experiment ``name``, in the order of the config's lists."""
    grid = config["experiments"][name].get("grid", {})
    keys = list(grid)
    points = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo, strict=True))
        scenario = apply_point(config["hospitals"], values, f"experiments.{name} grid point ({point_label(values)})")
        points.append(GridPoint(name, tuple(values.items()), scenario))
    return points


def dp_specs(config: dict, name: str) -> list[DPSpec]:
    """The experiment's DP settings: placements × ε, or no DP."""
    return dp_section_specs(config["experiments"][name].get("dp"), f"experiments.{name}.dp")


def dp_section_specs(dp: dict | None, where: str) -> list[DPSpec]:
    """The DP settings of a config section ``{placement: [...], epsilon: [...], delta,
    max_grad_norm}`` (placements × ε × C, C a number or a list; placement ``none`` is the cell
    without DP), or no DP when there is none; an error names ``where``."""
    if dp is None:
        return [DPSpec()]
    clips = dp["max_grad_norm"] if isinstance(dp["max_grad_norm"], list) else [dp["max_grad_norm"]]
    specs = unique(
        [
            DPSpec(placement, float(eps), float(dp["delta"]), float(clip), clients=_clients(dp, placement))
            if placement != "none"
            else DPSpec()
            for placement in dp["placement"]
            for eps in dp["epsilon"]
            for clip in clips
        ]
    )
    for spec in specs:
        try:
            check_spec(spec)
        except ValueError as err:
            raise ExperimentError(f"{where}: {err}") from None
    return specs


def _clients(dp: dict, placement: str) -> int:
    """The stated nominal number of hospitals K, for client-level DP only (0: the federation's)."""
    return int(dp.get("clients", 0)) if placement == CLIENT_LEVEL else 0


def optim_keys(config: dict, name: str) -> list[str]:
    """The experiment's optimiser keys: one per learning rate of its ``lr`` list, else the config's."""
    rates = config["experiments"][name].get("lr")
    return [OptimSpec(float(lr)).key() for lr in rates] if rates else [optim_key(config)]


def algorithm_keys(config: dict, name: str) -> list[str]:
    """The experiment's algorithms as canonical keys; an error names the bad entry."""
    keys = []
    for i, key in enumerate(config["experiments"][name].get("algorithms", [FEDAVG.key()])):
        try:
            keys.append(canonical_key(key, f"experiments.{name}.algorithms[{i}]"))
        except ValueError as err:
            raise ExperimentError(str(err)) from None
    return keys


def mode_algorithms(mode: str, algorithms: list[str]) -> list[str]:
    """Algorithms apply to federated cells; the other modes are the study's references and
    train with FedAvg (one cell, whatever the algorithm list)."""
    return algorithms if MODE_TAKES_ALGORITHM[mode] else [FEDAVG.key()]


def holdouts(spec: dict) -> list[str]:
    """An experiment's holdouts (``fedhet.data.holdout``): one, or a list (tuning both ways)."""
    holdout = spec.get("holdout", "test")
    return holdout if isinstance(holdout, list) else [holdout]


def experiment_cells(config: dict, name: str, points: list[GridPoint] | None = None) -> list[Cell]:
    spec = config["experiments"][name]
    if "choices" in spec:
        return chosen_cells(config, name)
    points = grid_points(config, name) if points is None else points
    keys = [dp.key() for dp in dp_specs(config, name)]
    algorithms = algorithm_keys(config, name)
    optims = optim_keys(config, name)
    return unique(
        [
            Cell(p.scenario.key(), mode, seed, dp, algorithm, holdout, optim)
            for holdout in holdouts(spec)
            for p in points
            for mode in spec["modes"]
            for algorithm in mode_algorithms(mode, algorithms)
            for dp in keys
            for optim in optims
            for seed in spec["seeds"]
        ]
    )


@dataclass(frozen=True)
class Choice:
    """One setting chosen on tuning cells (``fedhet.analysis.tuning.dp_selection_table``): a mode, its
    DP setting and its learning rate, trained with FedAvg on the core hospitals."""

    mode: str
    dp: DPSpec
    optim: OptimSpec

    @classmethod
    def from_config(cls, entry: dict, where: str) -> Choice:
        placement = entry["placement"]
        if placement == "none":
            dp = DPSpec()
        elif "epsilon" not in entry:
            raise ExperimentError(f"{where}: placement {placement!r} needs an epsilon")
        else:
            dp = DPSpec(placement, float(entry["epsilon"]), float(entry["delta"]), float(entry["max_grad_norm"]))
        try:
            check_spec(dp)
        except ValueError as err:
            raise ExperimentError(f"{where}: {err}") from None
        return cls(entry["mode"], dp, OptimSpec(float(entry["lr"])))


def choices(config: dict, name: str) -> list[Choice]:
    """An experiment's ``choices``: settings stated one by one instead of as a product."""
    spec = config["experiments"][name]
    stated = sorted({"grid", "dp", "lr"} & {k for k, v in spec.items() if v})
    if stated:
        raise ExperimentError(
            f"experiments.{name}: choices states each cell's setting; drop {', '.join(stated)} (core hospitals only)"
        )
    return [Choice.from_config(entry, f"experiments.{name}.choices[{i}]") for i, entry in enumerate(spec["choices"])]


def chosen_cells(config: dict, name: str) -> list[Cell]:
    spec = config["experiments"][name]
    core = Scenario.from_config(config["hospitals"]).key()
    return unique(
        [
            Cell(core, choice.mode, seed, choice.dp.key(), FEDAVG.key(), "test", choice.optim.key())
            for choice in choices(config, name)
            for seed in spec["seeds"]
        ]
    )


def experiment_scenarios(config: dict) -> dict[str, list[str]]:
    """Experiment name → its scenario keys (a scenario can belong to several experiments)."""
    return {name: unique([p.scenario.key() for p in grid_points(config, name)]) for name in config["experiments"]}


def unique(items: list) -> list:
    return list(dict.fromkeys(items))


def check_experiments(config: dict) -> None:
    """Raise ``ExperimentError`` naming the first grid point the pool cannot supply."""
    data = config["data"]
    n_abnormal, n_normal = pool_counts(dataset_spec(data["dataset"]), data["abnormal_classes"])
    check_fraction(config, Scenario.from_config(config["hospitals"]), "the core hospitals")
    for name, spec in config["experiments"].items():
        if "choices" in spec:
            check_choices(config, name)
            continue
        keys = algorithm_keys(config, name)
        for mode in spec.get("modes", ["federated"]):
            for key in mode_algorithms(mode, keys):
                for dp in dp_specs(config, name):
                    problem = setting_problem(mode, AlgorithmSpec.parse(key), dp)
                    if problem is not None:
                        field, reason = problem
                        at = f"algorithms[{keys.index(key)}]" if field == "algorithms" else "modes"
                        raise ExperimentError(f"experiments.{name}.{at}: {reason}")
        for point in grid_points(config, name):
            try:
                check_feasible(point.scenario, n_abnormal, n_normal, data["test_fraction"])
            except PartitionError as err:
                raise ExperimentError(f"experiments.{name} grid point ({point.label()}): {err}") from None
            check_fraction(config, point.scenario, f"experiments.{name} grid point ({point.label()})")


def check_fraction(config: dict, scenario: Scenario, where: str) -> None:
    """C · K ≥ 1: a round of the federation expects at least one hospital."""
    fraction = float(config["training"].get("client_fraction", 1.0))
    hospitals = sum(g.count for g in scenario.groups)
    if fraction * hospitals < 1 - 1e-9:
        raise ExperimentError(
            f"training.client_fraction: {fraction:g} of the {hospitals} hospitals of {where} is"
            f" {fraction * hospitals:.2g} per round; a round needs C ≥ 1/{hospitals}"
        )


def check_choices(config: dict, name: str) -> None:
    """Each choice runs in its mode, and was chosen among tuning cells of its setting: a
    private choice is charged for those cells, so they must exist."""
    where = chosen_on(config["experiments"][name])
    tuned_here = {
        _setting(cell.mode, DPSpec.parse(cell.dp)) for cell in validation_cells(config, True) if cell.holdout == where
    }
    for i, choice in enumerate(choices(config, name)):
        problem = setting_problem(choice.mode, FEDAVG, choice.dp)
        if problem is not None:
            raise ExperimentError(f"experiments.{name}.choices[{i}]: {problem[1]}")
        if _setting(choice.mode, choice.dp) not in tuned_here:
            raise ExperimentError(
                f"experiments.{name}.choices[{i}]: no tuning cell (holdout {where}) has mode {choice.mode} and"
                f" dp {choice.dp.key()} less its C; a choice is made among an experiment's candidates"
                f" (experiments with holdout {where} and a dp or lr list)"
            )


def _setting(mode: str, dp: DPSpec) -> tuple:
    """What a choice fixes before lr and C are chosen: mode, placement, ε and δ."""
    return (mode, dp.placement, dp.epsilon if dp.enabled else None, dp.delta if dp.enabled else None)


TUNINGS = {  # how a privacy figure's settings got their lr and C (experiments' ``chosen_on``)
    "fixed": "the config's lr and C",
    "public": "chosen on public proxies (no ε)",
    "validation": "chosen on private validation splits (ε charged)",
}


def chosen_on(spec: dict) -> str:
    """Where an experiment with ``choices`` had them chosen (``fedhet.analysis.tuning``)."""
    return spec.get("chosen_on", "validation")


def charged_cells(config: dict) -> list[Cell]:
    """The test cells of settings chosen on private validation splits: their tuning is charged
    (``fedhet.analysis.tuning.tuning_charges``)."""
    return unique(
        [
            cell
            for name, spec in config["experiments"].items()
            if "choices" in spec and chosen_on(spec) == "validation"
            for cell in experiment_cells(config, name)
        ]
    )


def all_experiment_cells(config: dict) -> list[Cell]:
    return unique([cell for name in config["experiments"] for cell in experiment_cells(config, name)])


def validation_cells(config: dict, tuning: bool) -> list[Cell]:
    """Cells trained to choose hyperparameters (holdout ``validation`` or ``public``): those of
    experiments with a ``dp`` or ``lr`` grid (``tuning``: the learning rate and C per DP
    setting, ``fedhet.analysis.tuning.dp_selection_table``), or of the others (algorithms on validation
    splits, ``fedhet.analysis.tables.selection_table``)."""
    cells = []
    for name, spec in config["experiments"].items():
        if "choices" not in spec and bool(spec.get("dp") or spec.get("lr")) == tuning:
            cells += [cell for cell in experiment_cells(config, name) if cell.holdout != "test"]
    return unique(cells)
