"""The figures beyond Figure 1: what each shows, and which cells of the config it plots.

Owns the figure registry (``FIGURES``): the sweeps (2–5), the privacy figures (6–7, 11, and
12–13, which draw each way the config's experiments set lr and C: fixed, chosen on public
proxies, chosen privately), the remedies against FedAvg (8–9) and the modes under scanner
shift (10); and which figures a config can build, with the reason for each it cannot. Pure
Python, like ``fedhet.workflow.experiments``, whose cells it picks from.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedhet.data.partition import Scenario
from fedhet.workflow.algorithms import FEDAVG
from fedhet.workflow.config import Cell, optim_key
from fedhet.workflow.experiments import (
    TUNINGS,
    ExperimentError,
    GridPoint,
    algorithm_keys,
    chosen_on,
    coordinate,
    experiment_cells,
    grid_points,
    unique,
)
from fedhet.workflow.specs import CLIENT_LEVEL, MODE_TAKES_ALGORITHM, DPSpec


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
    note: str = ""  # a second subtitle line: what the figure's ε does not count


REMEDY_FIGURES = {
    8: RemedyFigure(8, "remedies", "Figure 8: remedies for heterogeneity against FedAvg"),
    9: RemedyFigure(
        9,
        "remedies_dp",
        "Figure 9: remedies under DP at every hospital, against FedAvg with DP",
        note="the remedies' parameters were chosen without DP on the hospitals' validation splits"
        " (experiments.selection): ε counts training only, not that choice",
    ),
}


@dataclass(frozen=True)
class ModeFigure:
    """Metrics against grid key ``x``, one curve per training mode (``curves="mode"``: what
    federated training, a hospital alone and the large hospital alone give each hospital type as
    ``x`` changes) or per DP setting of federated cells (``curves="dp"``)."""

    number: int
    experiment: str
    x: str
    title: str
    metrics: tuple[str, ...] = ("recall", "auroc", "auprc")
    curves: str = "mode"


MODE_FIGURES = {
    10: ModeFigure(
        10, "scanner_shift", "small.shift", "Figure 10: the small hospitals' scanner shift, per training mode"
    ),
    14: ModeFigure(
        14,
        "many_total",
        "small.count",
        "Figure 14: how many small hospitals share a fixed total of small-hospital records",
        curves="dp",
    ),
    15: ModeFigure(15, "many_size", "small.count", "Figure 15: more small hospitals of a fixed size", curves="dp"),
}
FIGURES = {**SWEEP_FIGURES, **PRIVACY_FIGURES, **REMEDY_FIGURES, **MODE_FIGURES}


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
    cells = [c for c in experiment_cells(config, figure.experiment) if c.algorithm == FEDAVG.key()]
    if figure.curves == "dp":
        return [c for c in cells if c.mode == "federated" and c.holdout == "test"]
    return [c for c in cells if c.dp == "nodp" and c.holdout == "test"]


def figure_variants(config: dict, number: int) -> list[tuple[str, Cell]]:
    """(tuning, cell) of Figure ``number``: how each cell's lr and C were set (``TUNINGS``);
    only privacy figures draw tuned settings."""
    if number in PRIVACY_FIGURES:
        return privacy_figure_variants(config, number)
    return [("fixed", cell) for cell in figure_cells(config, number)]


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


def has_privacy_rows(number: int) -> bool:
    """Whether Figure ``number`` draws DP settings against each other, and so comes with its
    cells' privacy rows (``tables/privacy_fig<n>.csv``)."""
    return number in PRIVACY_FIGURES or (number in MODE_FIGURES and MODE_FIGURES[number].curves == "dp")


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
