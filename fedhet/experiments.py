"""Heterogeneity sweeps: the ``experiments`` config expanded into scenarios and cells.

An experiment is a grid over fields of the core hospital groups, written ``<type>.<field>``
with field ``abnormal_ratio``, ``size``, ``count``, ``abnormal_count`` (a fixed number of
abnormal images: the size becomes count / ratio) or ``shift`` (a scanner shift key such as
``blur3``, or ``none``), times its training modes, its DP settings
(placements × ε, with δ and the clip norm) and its seeds. Every grid point replaces those
fields of the core ``hospitals`` and is one ``Scenario``; its cells are ordinary training
cells, so a cell shared by two experiments (or with the core grid) has one path and is
trained once.

Also owns which cells each figure beyond Figure 1 plots: the sweeps (2–5), the privacy
figures (6–7, 11, and 12–13 with each setting's hyperparameters chosen on validation cells:
``choices``) and the remedies against FedAvg (8–9). A cell's learning rate is part of its key
(``lr`` lists, ``fedhet.specs.OptimSpec``), like its DP setting. Pure Python: the workflow imports it to
build the DAG, and rejects an infeasible grid, an impossible DP setting or an unknown algorithm
before any job runs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fedhet.algorithms import FEDAVG, AlgorithmSpec, canonical_key
from fedhet.config import Cell, ConfigError, optim_key
from fedhet.data import dataset_spec, pool_counts
from fedhet.partition import HospitalGroup, PartitionError, Scenario, check_feasible
from fedhet.shift import ShiftSpec, normalise_shift
from fedhet.specs import CLIENT_LEVEL, MODE_TAKES_ALGORITHM, DPSpec, OptimSpec, check_spec

GRID_FIELDS = ("abnormal_ratio", "size", "count", "abnormal_count", "shift")


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
    if field == "shift":  # the shift's severity, 0 for none: a number to plot and regress on
        return ShiftSpec.parse(group.shift).severity if group.shift else 0
    return getattr(group, field)


def apply_point(hospitals: list[dict], values: dict[str, float], where: str) -> Scenario:
    """The core hospitals with the grid point's values in place."""
    groups = {h["type"]: dict(h) for h in hospitals}
    fixed_counts = {}
    for key, value in values.items():
        type_, _, field = key.partition(".")
        if type_ not in groups:
            raise ExperimentError(f"{where}: grid key {key!r} names hospital type {type_!r}, not in {sorted(groups)}")
        if field not in GRID_FIELDS:
            raise ExperimentError(f"{where}: grid key {key!r}: field {field!r} is not one of {GRID_FIELDS}")
        if field == "abnormal_count":
            fixed_counts[type_] = value
        elif field == "shift":
            try:
                groups[type_]["shift"] = normalise_shift(value)
            except ValueError as err:
                raise ExperimentError(f"{where}: {err}") from None
        else:
            groups[type_][field] = value
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
    """An experiment's holdouts (``fedhet.holdout``): one, or a list (tuning both ways)."""
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
    """One setting chosen on tuning cells (``fedhet.tuning.dp_selection_table``): a mode, its
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
    for name, spec in config["experiments"].items():
        if "choices" in spec:
            check_choices(config, name)
            continue
        others = sorted(set(spec.get("modes", ["federated"])) - {"federated"})
        if others and any(dp.client_level for dp in dp_specs(config, name)):
            raise ExperimentError(
                f"experiments.{name}.modes: client-level DP (dp.placement client_level) protects hospitals in a"
                f" federation; it cannot run in {', '.join(others)}"
            )
        private = [dp for dp in dp_specs(config, name) if dp.enabled]
        for i, key in enumerate(algorithm_keys(config, name)):
            info = AlgorithmSpec.parse(key).info
            if private and not info.dp_compatible:
                raise ExperimentError(
                    f"experiments.{name}.algorithms[{i}]: {key} cannot run under DP (its pick uses private"
                    f" records DP-SGD does not cover), and experiments.{name}.dp is set"
                )
            for dp in private:
                if dp.client_level and not info.client_level:
                    raise ExperimentError(
                        f"experiments.{name}.algorithms[{i}]: {key} cannot run under client-level DP"
                        f" ({dp.key()}): its updates carry extras the server's noise does not cover"
                    )
        for point in grid_points(config, name):
            try:
                check_feasible(point.scenario, n_abnormal, n_normal, data["test_fraction"])
            except PartitionError as err:
                raise ExperimentError(f"experiments.{name} grid point ({point.label()}): {err}") from None


def check_choices(config: dict, name: str) -> None:
    """Each choice runs in its mode, and was chosen among tuning cells of its setting: a
    private choice is charged for those cells, so they must exist."""
    where = chosen_on(config["experiments"][name])
    tuned_here = {
        _setting(cell.mode, DPSpec.parse(cell.dp)) for cell in validation_cells(config, True) if cell.holdout == where
    }
    for i, choice in enumerate(choices(config, name)):
        if choice.dp.client_level and choice.mode != "federated":
            raise ExperimentError(
                f"experiments.{name}.choices[{i}]: client-level DP protects hospitals in a federation;"
                f" it cannot run in mode {choice.mode}"
            )
        if _setting(choice.mode, choice.dp) not in tuned_here:
            raise ExperimentError(
                f"experiments.{name}.choices[{i}]: no tuning cell (holdout {where}) has mode {choice.mode} and"
                f" dp {choice.dp.key()} less its C; a choice is made among an experiment's candidates"
                f" (experiments with holdout {where} and a dp or lr list)"
            )


def _setting(mode: str, dp: DPSpec) -> tuple:
    """What a choice fixes before lr and C are chosen: mode, placement, ε and δ."""
    return (mode, dp.placement, dp.epsilon if dp.enabled else None, dp.delta if dp.enabled else None)


@dataclass(frozen=True)
class SweepFigure:
    """One sweep figure: curves of ``metrics`` against ``x``, one panel per ``facet`` value
    (or per metric), for the large hospital and the small hospitals' mean."""

    number: int
    experiment: str
    metrics: tuple[str, ...]
    facet: str  # a grid key, or "metric"
    title: str
    hold_at_core: tuple[str, ...] = ()  # grid keys kept at the core config's value
    x: str = "large.abnormal_ratio"


SWEEP_FIGURES = {
    2: SweepFigure(
        2,
        "fixed_size",
        ("recall", "auroc"),
        "metric",
        "Figure 2: large hospital's abnormal ratio at fixed size",
        hold_at_core=("small.abnormal_ratio",),
    ),
    3: SweepFigure(
        3, "fixed_size", ("recall",), "small.abnormal_ratio", "Figure 3: recall, fixed size, per small-hospital ratio"
    ),
    4: SweepFigure(
        4, "fixed_size", ("auroc",), "small.abnormal_ratio", "Figure 4: AUROC, fixed size, per small-hospital ratio"
    ),
    5: SweepFigure(
        5,
        "fixed_count",
        ("recall", "auroc"),
        "small.abnormal_ratio",
        "Figure 5: large hospital's abnormal ratio at a fixed abnormal count",
    ),
}


def figure_points(config: dict, number: int) -> list[GridPoint]:
    """The grid points Figure ``number`` plots; an error names what the config lacks."""
    figure = SWEEP_FIGURES[number]
    if figure.experiment not in config["experiments"]:
        raise ExperimentError(f"fig{number}: needs experiments.{figure.experiment} in the config")
    points = grid_points(config, figure.experiment)
    core = Scenario.from_config(config["hospitals"])
    for key in figure.hold_at_core:
        target = coordinate(core, key)
        points = [p for p in points if coordinate(p.scenario, key) == target]
        if not points:
            raise ExperimentError(
                f"fig{number}: experiments.{figure.experiment}.grid has no point with {key}={target:g} "
                "(the core config's value, which this figure plots)"
            )
    return points


@dataclass(frozen=True)
class PrivacyFigure:
    """Metrics against ε for DP configurations on the core scenario, beside the no-DP cells
    of ``references`` (modes) drawn flat across the ε range."""

    number: int
    curves: tuple[tuple[str, str], ...]  # (mode, placement)
    references: tuple[str, ...]
    title: str
    metrics: tuple[str, ...] = ("recall", "auroc")
    # Also drawn from the experiments with ``choices`` (lr and C chosen per setting on public
    # proxies or private validation splits): one column per way of setting them (TUNINGS).
    tuned: bool = False


PRIVACY_FIGURES = {
    6: PrivacyFigure(
        6,
        (("federated", "all"), ("large_only", "all")),
        ("federated", "large_only"),
        "Figure 6: DP at every hospital, federated vs the large hospital alone",
    ),
    7: PrivacyFigure(
        7,
        (("federated", "all"), ("federated", "small_hospitals")),
        ("federated",),
        "Figure 7: federated, DP at every hospital vs at the small hospitals only",
    ),
    11: PrivacyFigure(
        11,
        (("federated", "all"), ("federated", CLIENT_LEVEL)),
        ("federated",),
        "Figure 11: a patient's record (DP-SGD at every hospital) vs a hospital's participation (client-level DP)",
    ),
    12: PrivacyFigure(
        12,
        (("federated", "all"), ("large_only", "all")),
        ("federated", "large_only"),
        "Figure 12: Figure 6 with the learning rate and C fixed, chosen on public proxies, and chosen privately",
        tuned=True,
    ),
    13: PrivacyFigure(
        13,
        (("federated", "all"), ("federated", "small_hospitals")),
        ("federated",),
        "Figure 13: Figure 7 with the learning rate and C fixed, chosen on public proxies, and chosen privately",
        tuned=True,
    ),
}


@dataclass(frozen=True)
class RemedyFigure:
    """Each algorithm of ``experiment`` against FedAvg on the same seeds (same partitions):
    one panel per grid point and DP setting of the experiment."""

    number: int
    experiment: str
    title: str
    metrics: tuple[str, ...] = ("recall", "precision", "auroc", "auprc")


REMEDY_FIGURES = {
    8: RemedyFigure(8, "remedies", "Figure 8: remedies for heterogeneity against FedAvg"),
    9: RemedyFigure(9, "remedies_dp", "Figure 9: remedies under DP at every hospital, against FedAvg with DP"),
}


@dataclass(frozen=True)
class ModeFigure:
    """Metrics against grid key ``x``, one curve per training mode: what federated training, a
    hospital alone and the large hospital alone give each hospital type as ``x`` changes."""

    number: int
    experiment: str
    x: str
    title: str
    metrics: tuple[str, ...] = ("recall", "auroc", "auprc")


MODE_FIGURES = {
    10: ModeFigure(
        10, "scanner_shift", "small.shift", "Figure 10: the small hospitals' scanner shift, per training mode"
    ),
}
FIGURES = {**SWEEP_FIGURES, **PRIVACY_FIGURES, **REMEDY_FIGURES, **MODE_FIGURES}


TUNINGS = {  # how a privacy figure's settings got their lr and C (experiments' ``chosen_on``)
    "fixed": "the config's lr and C",
    "public": "chosen on public proxies (no ε)",
    "validation": "chosen on private validation splits (ε charged)",
}


def chosen_on(spec: dict) -> str:
    """Where an experiment with ``choices`` had them chosen (``fedhet.tuning``)."""
    return spec.get("chosen_on", "validation")


def privacy_candidates(config: dict, tuning: str) -> list[Cell]:
    """The test cells a privacy figure may draw on for ``tuning`` (``TUNINGS``): FedAvg on the
    core hospitals, from the experiments with a ``dp`` product trained with the config's
    learning rate (fixed), or from those with ``choices`` chosen on ``tuning``."""
    core = Scenario.from_config(config["hospitals"]).key()
    fixed_optim = optim_key(config)
    cells = []
    for name, spec in config["experiments"].items():
        if "choices" in spec:
            if tuning == "fixed" or chosen_on(spec) != tuning:
                continue
        elif tuning != "fixed" or "dp" not in spec:
            continue
        cells += [
            cell
            for cell in experiment_cells(config, name)
            if cell.scenario == core
            and cell.algorithm == FEDAVG.key()
            and cell.holdout == "test"
            and (tuning != "fixed" or cell.optim == fixed_optim)
        ]
    return unique(cells)


def _variant_cells(config: dict, figure: PrivacyFigure, tuning: str) -> list[Cell]:
    source = "an experiment" if tuning == "fixed" else f"an experiment with choices chosen_on {tuning}"
    candidates = privacy_candidates(config, tuning)
    cells = []
    for mode, placement in figure.curves:
        found = [c for c in candidates if c.mode == mode and DPSpec.parse(c.dp).placement == placement]
        if not found:
            raise ExperimentError(
                f"fig{figure.number}: needs {source} with mode {mode!r} and dp placement {placement!r} "
                "on the core hospitals (an experiment without a grid)"
            )
        cells += found
    seeds = sorted({cell.seed for cell in cells})
    core = Scenario.from_config(config["hospitals"]).key()
    for mode in figure.references:
        if tuning == "fixed":
            cells += [Cell(core, mode, seed, optim=optim_key(config)) for seed in seeds]
            continue
        found = [c for c in candidates if c.mode == mode and c.dp == DPSpec().key()]
        if not found:
            raise ExperimentError(f"fig{figure.number}: needs {source} with mode {mode!r} and placement 'none'")
        cells += found
    return unique(cells)


def privacy_figure_variants(config: dict, number: int) -> list[tuple[str, Cell]]:
    """(tuning, cell) for every cell of privacy Figure ``number``. A tuned figure draws each
    way of choosing lr and C that the config's experiments with ``choices`` hold, and beside
    them the fixed settings where the config trains them; a cell chosen both ways is listed
    under each."""
    figure = PRIVACY_FIGURES[number]
    if not figure.tuned:
        return [("fixed", cell) for cell in _variant_cells(config, figure, "fixed")]
    tunings = [t for t in TUNINGS if t != "fixed" and privacy_candidates(config, t)]
    if not tunings:
        raise ExperimentError(f"fig{number}: needs an experiment with choices (chosen_on public or validation)")
    variants = [(tuning, cell) for tuning in tunings for cell in _variant_cells(config, figure, tuning)]
    if privacy_candidates(config, "fixed"):
        variants = [("fixed", cell) for cell in _variant_cells(config, figure, "fixed")] + variants
    return variants


def privacy_figure_cells(config: dict, number: int) -> list[Cell]:
    return unique([cell for _, cell in privacy_figure_variants(config, number)])


def remedy_figure_cells(config: dict, number: int) -> list[Cell]:
    figure = REMEDY_FIGURES[number]
    if figure.experiment not in config["experiments"]:
        raise ExperimentError(f"fig{number}: needs experiments.{figure.experiment} in the config")
    if FEDAVG.key() not in algorithm_keys(config, figure.experiment):
        raise ExperimentError(f"fig{number}: experiments.{figure.experiment}.algorithms needs fedavg, the reference")
    cells = experiment_cells(config, figure.experiment)
    return [cell for cell in cells if MODE_TAKES_ALGORITHM[cell.mode] and cell.holdout == "test"]


def mode_figure_cells(config: dict, number: int) -> list[Cell]:
    figure = MODE_FIGURES[number]
    if figure.experiment not in config["experiments"]:
        raise ExperimentError(f"fig{number}: needs experiments.{figure.experiment} in the config")
    if figure.x not in config["experiments"][figure.experiment].get("grid", {}):
        raise ExperimentError(f"fig{number}: experiments.{figure.experiment}.grid needs {figure.x}")
    cells = experiment_cells(config, figure.experiment)
    return [c for c in cells if c.algorithm == FEDAVG.key() and c.dp == "nodp" and c.holdout == "test"]


def figure_variants(config: dict, number: int) -> list[tuple[str, Cell]]:
    """(tuning, cell) of Figure ``number``: how each cell's lr and C were set (``TUNINGS``);
    only privacy figures draw tuned settings."""
    if number in PRIVACY_FIGURES:
        return privacy_figure_variants(config, number)
    return [("fixed", cell) for cell in figure_cells(config, number)]


def charged_cells(config: dict) -> list[Cell]:
    """The test cells of settings chosen on private validation splits: their tuning is charged
    (``fedhet.tuning.tuning_charges``)."""
    return unique(
        [
            cell
            for name, spec in config["experiments"].items()
            if "choices" in spec and chosen_on(spec) == "validation"
            for cell in experiment_cells(config, name)
        ]
    )


def figure_cells(config: dict, number: int) -> list[Cell]:
    """The training cells Figure ``number`` (2–13) plots."""
    if number in PRIVACY_FIGURES:
        return privacy_figure_cells(config, number)
    if number in REMEDY_FIGURES:
        return remedy_figure_cells(config, number)
    if number in MODE_FIGURES:
        return mode_figure_cells(config, number)
    cells = experiment_cells(config, SWEEP_FIGURES[number].experiment, figure_points(config, number))
    return [cell for cell in cells if cell.algorithm == FEDAVG.key()]


def figure_status(config: dict) -> dict[int, str]:
    """Each figure beyond Figure 1: "" where the config's experiments can build it, else why
    not (the ``ExperimentError`` naming what it needs), for the run to say."""
    status = {}
    for number in sorted(FIGURES):
        try:
            figure_cells(config, number)
        except ExperimentError as err:
            status[number] = str(err)
        else:
            status[number] = ""
    return status


def configured_figures(config: dict) -> list[int]:
    """The figures beyond Figure 1 that the config's experiments can build."""
    return [number for number, reason in figure_status(config).items() if not reason]


def skipped_figures_text(config: dict) -> str:
    """One line per figure the config cannot build, with the reason: printed before every run,
    so that a renamed or missing experiment never drops its figure in silence."""
    return "\n".join(f"fedhet: Figure {n} skipped: {why}" for n, why in figure_status(config).items() if why)


def all_experiment_cells(config: dict) -> list[Cell]:
    return unique([cell for name in config["experiments"] for cell in experiment_cells(config, name)])


def validation_cells(config: dict, tuning: bool) -> list[Cell]:
    """Cells trained to choose hyperparameters (holdout ``validation`` or ``public``): those of
    experiments with a ``dp`` or ``lr`` grid (``tuning``: the learning rate and C per DP
    setting, ``fedhet.tuning.dp_selection_table``), or of the others (algorithms on validation
    splits, ``fedhet.tables.selection_table``)."""
    cells = []
    for name, spec in config["experiments"].items():
        if "choices" not in spec and bool(spec.get("dp") or spec.get("lr")) == tuning:
            cells += [cell for cell in experiment_cells(config, name) if cell.holdout != "test"]
    return unique(cells)
