"""Sweep grids: expansion into scenarios and cells, shared cells, fixed-count sizes, and
infeasible grids rejected before any training."""

import copy

import pytest
import yaml

from conftest import REPO
from fedhet.data.partition import Scenario
from fedhet.workflow.config import Cell, ConfigError, core_cells, validate_config
from fedhet.workflow.experiments import (
    ExperimentError,
    all_experiment_cells,
    check_experiments,
    chosen_on,
    experiment_cells,
    grid_points,
)
from fedhet.workflow.figure_specs import (
    configured_figures,
    figure_cells,
    figure_status,
    figure_variants,
    skipped_figures_text,
)
from fedhet.workflow.specs import DPSpec

STUDY = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
STUDY_CORE = Scenario.from_config(STUDY["hospitals"]).key()
RATIOS = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]


def study(**experiments) -> dict:
    config = copy.deepcopy(STUDY)
    config["experiments"].update(experiments)
    return validate_config(config)


def test_study_grid_sizes():
    assert len(grid_points(STUDY, "fixed_size")) == 9 * 4
    assert len(grid_points(STUDY, "fixed_count")) == 9 * 4
    # Five seeds by default; the two grids share their 10% column (30,000 images either way).
    assert {n: len(figure_cells(STUDY, n)) for n in (2, 3, 4, 5)} == {2: 9 * 5, 3: 36 * 5, 4: 36 * 5, 5: 36 * 5}
    sweeps = experiment_cells(STUDY, "fixed_size") + experiment_cells(STUDY, "fixed_count")
    assert len(set(sweeps)) == (36 + 36 - 4) * 5
    # + the DP grids: 7 ε and the clipping-only control × 3 seeds × (federated and large-only at
    # all, federated at small_hospitals)
    # + selection (29 algorithms on validation splits, 3 seeds) + remedies (8 beside FedAvg at 2
    # points, 3 seeds; FedAvg's cells are shared) + remedies under DP (7 with FedAvg at 2 budgets
    # at lr 0.03; FedAvg's at ε = 1 are the tuned cells chosen on public proxies)
    # + client-level DP (4 budgets × 3 seeds, federated)
    # + DP tuning on validation splits and on public proxies, seed 0: 3 lr × (2 modes × (no DP +
    # 2 ε × 2 C) + the small hospitals' 2 ε × 2 C) each, less FedAvg's no-DP federated validation
    # cell at lr 0.01, which selection has
    # + the tuned settings (8 choices per way × 3 seeds), less large-only at ε = 1 chosen on
    # validation, whose choice is the fixed C = 1, lr = 0.01 (dp_all's cells), and federated
    # clipping only at every hospital, which both ways chose alike (C = 1, lr = 0.1)
    remedies = 29 * 3 + 8 * 2 * 3 + 7 * 2 * 3 - 3
    tuning = 2 * 3 * (2 * (1 + 2 * 2) + 2 * 2) - 1
    tuned = 2 * 8 * 3 - 3 - 3
    assert len(all_experiment_cells(STUDY)) == (36 + 36 - 4) * 5 + (7 + 1) * 3 * 3 + remedies + 4 * 3 + tuning + tuned


def test_cells_shared_between_figures_have_one_path():
    fig2 = {c.directory() for c in figure_cells(STUDY, 2)}
    fig3 = {c.directory() for c in figure_cells(STUDY, 3)}
    assert fig2 < fig3  # Figure 2 is panel (b) of Figures 3-4
    core_federated = {c.directory() for c in core_cells(STUDY) if c.mode == "federated"}
    assert core_federated < fig2  # its 50% point is the core federated cell (seeds 0-2)
    shared = fig3 & {c.directory() for c in figure_cells(STUDY, 5)}
    assert len(shared) == 4 * 5 and all("large1x30000r0.1-" in path for path in shared)


def test_fixed_count_sets_size_from_ratio():
    points = [p for p in grid_points(STUDY, "fixed_count") if dict(p.values)["small.abnormal_ratio"] == 0.1]
    large = [p.scenario.groups[0] for p in points]
    assert [g.abnormal_ratio for g in large] == RATIOS
    assert [g.size for g in large] == [30000, 20000, 15000, 12000, 10000, 8571, 7500, 6667, 6000]
    assert {g.n_abnormal for g in large} == {3000}
    assert all(p.scenario.groups[1] == Scenario.from_config(STUDY["hospitals"]).groups[1] for p in points)


def test_study_grids_fit_the_pool():
    check_experiments(STUDY)


def test_infeasible_grid_point_is_named_before_training():
    config = study(bigger={"grid": {"large.abnormal_ratio": [0.5, 0.7], "small.abnormal_ratio": [0.1]}})
    with pytest.raises(ExperimentError) as err:
        check_experiments(config)
    message = str(err.value)
    assert "experiments.bigger grid point (large.abnormal_ratio=0.7, small.abnormal_ratio=0.1)" in message
    assert "needs 22200 abnormal images" in message and "only 18000" in message


def test_fixed_count_too_large_for_the_pool():
    config = study(many={"grid": {"large.abnormal_ratio": [0.05], "large.abnormal_count": [3000]}})
    with pytest.raises(ExperimentError, match=r"large.abnormal_count=3000\).*needs 67800 normal images"):
        check_experiments(config)


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"huge.abnormal_ratio": [0.1]}, r"hospital type 'huge', not in \['large', 'small'\]"),
        ({"large.abnormal_ratio": [0.0], "large.abnormal_count": [100]}, r"abnormal_count 100 needs an abnormal_ratio"),
    ],
)
def test_bad_grid_keys_are_named(grid, message):
    with pytest.raises(ExperimentError, match=message):
        grid_points(study(bad={"grid": grid}), "bad")


def test_schema_rejects_unknown_grid_field():
    config = copy.deepcopy(STUDY)
    config["experiments"]["bad"] = {"grid": {"large.colour": [1]}}
    with pytest.raises(ConfigError, match=r"experiments.bad.grid"):
        validate_config(config)


def test_experiment_defaults_are_five_seeds_federated():
    config = study(tiny={"grid": {"large.abnormal_ratio": [0.2, 0.3]}})
    cells = experiment_cells(config, "tiny")
    assert len(cells) == 2 * 5 and {c.mode for c in cells} == {"federated"}
    assert {c.seed for c in cells} == {0, 1, 2, 3, 4}


def test_figure_two_needs_the_core_small_ratio():
    config = study(fixed_size={"grid": {"large.abnormal_ratio": RATIOS, "small.abnormal_ratio": [0.05, 0.2]}})
    with pytest.raises(ExperimentError, match=r"fig2: .* no point with small.abnormal_ratio=0.1"):
        figure_cells(config, 2)


def test_privacy_figures_share_cells_with_the_core_grid():
    fig6, fig7 = figure_cells(STUDY, 6), figure_cells(STUDY, 7)
    eps = [0.1, 0.2, 0.5, 1, 2, 5, 10, float("inf")]  # inf: the clipping-only control
    # Figure 6: federated and large-only with DP everywhere, 8 ε × 3 seeds, + both no-DP cells
    assert len(fig6) == 2 * 8 * 3 + 2 * 3
    assert {(c.mode, c.dp.split("-")[0]) for c in fig6} == {
        ("federated", "all"),
        ("large_only", "all"),
        ("federated", "nodp"),
        ("large_only", "nodp"),
    }
    assert {c.dp for c in fig6 if c.mode == "large_only" and c.dp != "nodp"} == {
        f"all-eps{e:g}-delta1e-05-clip1" for e in eps
    }
    # Figure 7's reference is the core federated cell; its DP-everywhere curve is Figure 6's.
    core_federated = {c for c in core_cells(STUDY) if c.mode == "federated"}
    assert core_federated < set(fig7)
    assert {c for c in fig7 if c.dp.startswith("all-")} == {
        c for c in fig6 if c.dp.startswith("all-") and c.mode == "federated"
    }
    assert len(fig7) == 2 * 8 * 3 + 3


@pytest.mark.parametrize(
    "dp, message",
    [
        (
            {"placement": ["all"], "epsilon": [0]},
            r"experiments.bad.dp.epsilon.0: 0 is less than or equal to the minimum",
        ),
        ({"placement": ["all"], "epsilon": [1], "delta": 1}, r"experiments.bad.dp.delta: 1 is greater than or equal"),
        ({"placement": ["all"], "epsilon": [1], "max_grad_norm": 0}, r"experiments.bad.dp.max_grad_norm"),
        ({"placement": ["everywhere"], "epsilon": [1]}, r"experiments.bad.dp.placement.0: 'everywhere' is not one of"),
    ],
)
def test_bad_dp_settings_name_the_key(dp, message):
    config = copy.deepcopy(STUDY)
    config["experiments"]["bad"] = {"dp": dp}
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_client_level_dp_runs_federated_beside_record_level_dp_in_figure_11():
    fig11 = figure_cells(STUDY, 11)
    client = [c for c in fig11 if c.dp.startswith("client_level-")]
    assert len(client) == 4 * 3 and {c.mode for c in fig11} == {"federated"}
    assert {c for c in fig11 if c.dp.startswith("all-")} == {
        c for c in figure_cells(STUDY, 7) if c.dp.startswith("all-")
    }
    bad = copy.deepcopy(STUDY)
    bad["experiments"]["dp_client"]["modes"] = ["federated", "large_only"]
    with pytest.raises(
        ExperimentError,
        match="experiments.dp_client.modes: client-level DP protects hospitals in a federation, not mode large_only",
    ):
        check_experiments(bad)


def test_infinite_epsilon_is_the_clipping_only_control_with_its_own_key():
    config = study(clip={"dp": {"placement": ["all"], "epsilon": [1, float("inf")]}, "seeds": [0]})
    check_experiments(config)
    keys = {cell.dp for cell in experiment_cells(config, "clip")}
    assert keys == {"all-eps1-delta1e-05-clip1", "all-epsinf-delta1e-05-clip1"}
    assert DPSpec.parse("all-epsinf-delta1e-05-clip1").clipping_only
    assert not DPSpec.parse("all-eps1-delta1e-05-clip1").clipping_only


@pytest.mark.parametrize(
    "config_file, results",
    [("config.yaml", "selection.csv"), ("pneumonia.yaml", "pneumonia_mnist/selection.csv")],
)
def test_remedies_run_the_keys_the_selection_chose_on_validation_data(config_file, results):
    """A shipped config's remedy keys are its committed selection's choices, one per family,
    among exactly the candidates it lists, chosen on validation splits; under DP the same keys
    less the ones DP cannot cover."""
    import pandas as pd

    from fedhet.workflow.algorithms import AlgorithmSpec

    config = validate_config(yaml.safe_load((REPO / "config" / config_file).read_text()))
    experiments = config["experiments"]
    selection = pd.read_csv(REPO / "docs" / "results" / results)
    assert set(selection["algorithm"]) == set(experiments["selection"]["algorithms"])
    assert set(selection["n"]) == {len(experiments["selection"]["seeds"])}
    chosen = set(selection.loc[selection["chosen"], "algorithm"])
    assert selection.groupby("family")["chosen"].sum().eq(1).all()
    assert set(experiments["remedies"]["algorithms"]) == chosen
    under_dp = {key for key in chosen if AlgorithmSpec.parse(key).info.dp_compatible}

    def tuned_part(key: str) -> str:
        """The key with the parameters selection does not tune at their defaults (Ditto's ρ,
        which Figure 9 sets from the learning rate, as the config says)."""
        spec = AlgorithmSpec.parse(key)
        defaults = {p.name: p.default for p in spec.info.params if not p.keyed_at_default}
        return AlgorithmSpec(spec.name, tuple((n, defaults.get(n, v)) for n, v in spec.params)).key()

    assert {tuned_part(key) for key in experiments["remedies_dp"]["algorithms"]} == under_dp
    assert experiments["selection"]["holdout"] == "validation"


@pytest.mark.parametrize("config_file", ["config.yaml", "pneumonia.yaml"])
def test_remedies_under_dp_train_at_what_public_tuning_chose_for_fedavg(config_file):
    """Figure 9's lr and C are the public tuning's pick for federated FedAvg with DP at every
    hospital at Figure 9's smallest ε, so they cost no ε (the docs say so)."""
    config = validate_config(yaml.safe_load((REPO / "config" / config_file).read_text()))
    experiments = config["experiments"]
    dp = experiments["remedies_dp"]["dp"]
    assert experiments["dp_tuned_public"]["chosen_on"] == "public"
    [pick] = [
        c
        for c in experiments["dp_tuned_public"]["choices"]
        if c["mode"] == "federated" and c["placement"] == "all" and c["epsilon"] == min(dp["epsilon"])
    ]
    assert experiments["remedies_dp"]["lr"] == [pick["lr"]]
    assert dp["max_grad_norm"] == pick["max_grad_norm"]


# --- fair DP hyperparameters: lr and C grids on validation cells, choices for the tuned figures ---


def test_tuning_grids_give_one_cell_per_lr_and_clip_norm_and_one_without_dp_per_lr():
    config = study(
        tune={
            "holdout": "validation",
            "dp": {"placement": ["none", "all"], "epsilon": [1, 10], "max_grad_norm": [0.1, 1.0]},
            "lr": [0.01, 0.1],
            "seeds": [0],
        }
    )
    cells = experiment_cells(config, "tune")
    assert len(cells) == 2 * (1 + 2 * 2)  # placement none is the cell without DP, once per lr
    assert {(c.dp, c.optim) for c in cells if c.dp == "nodp"} == {("nodp", "lr0.01"), ("nodp", "lr0.1")}
    assert {c.dp for c in cells} >= {"all-eps1-delta1e-05-clip0.1", "all-eps10-delta1e-05-clip1"}
    assert all(c.holdout == "validation" and c.key().endswith("/seed0-validation") for c in cells)
    assert cells[0].key().split("/")[4] == cells[0].optim  # the path holds the learning rate
    # Tuning cells never reach a figure, and the study's privacy figures only draw cells trained
    # with the config's own learning rate.
    assert not set(cells) & {c for n in (6, 7, 11) for c in figure_cells(config, n)}


def test_an_experiment_without_lr_trains_with_the_configs_rate():
    config = copy.deepcopy(STUDY)
    config["training"]["lr"] = 0.05
    assert {c.optim for c in all_experiment_cells(config)} - {"lr0.01", "lr0.03", "lr0.1"} == {"lr0.05"}
    assert {c.optim for c in core_cells(config)} == {"lr0.05"}
    assert {c.optim for c in figure_cells(config, 6)} == {"lr0.05"}


TUNED = [
    {"mode": "federated", "placement": "none", "lr": 0.03},
    {"mode": "large_only", "placement": "none", "lr": 0.01},
    {"mode": "federated", "placement": "all", "epsilon": 1, "max_grad_norm": 0.1, "lr": 0.1},
    {"mode": "federated", "placement": "all", "epsilon": float("inf"), "max_grad_norm": 1.0, "lr": 0.03},
    {"mode": "large_only", "placement": "all", "epsilon": 1, "max_grad_norm": 1.0, "lr": 0.01},
]


def test_choices_train_each_chosen_setting_and_feed_the_tuned_figure_only():
    config = copy.deepcopy(STUDY)
    for name in ("dp_tuned", "dp_tuned_public"):  # the shipped choices: this test states its own
        del config["experiments"][name]
    config["experiments"]["tuned"] = {"choices": TUNED, "seeds": [0, 1]}
    config = validate_config(config)
    cells = experiment_cells(config, "tuned")
    assert len(cells) == len(TUNED) * 2
    assert Cell(STUDY_CORE, "federated", 1, "all-eps1-delta1e-05-clip0.1", optim="lr0.1") in cells
    # Figure 6 tuned: its curves and references as chosen, beside Figure 6's fixed settings
    assert set(figure_cells(config, 12)) == set(cells) | set(figure_cells(config, 6))
    variants = figure_variants(config, 12)
    assert {cell for tuning, cell in variants if tuning == "validation"} == set(cells)
    # A choice of the config's own settings is the fixed figure's cell: one path, trained once.
    fixed = {c for c in cells if c.optim == "lr0.01" and c.dp in ("nodp", "all-eps1-delta1e-05-clip1")}
    assert len(fixed) == 2 * 2 and set(cells) & set(figure_cells(config, 6)) == fixed
    assert {(t, c) for t, c in variants if c in fixed} == {(t, c) for c in fixed for t in ("fixed", "validation")}
    with pytest.raises(
        ExperimentError, match="fig13: needs an experiment with choices chosen_on validation with mode 'federated'"
    ):
        figure_cells(config, 13)  # no small_hospitals choice


def test_a_choice_outside_the_tuning_candidates_is_refused():
    config = copy.deepcopy(STUDY)
    del config["experiments"]["dp_tuned_public"]  # the shipped public choices: tuned on public proxies
    for name in ("dp_tuning_all", "dp_tuning_small"):
        config["experiments"][name]["holdout"] = "validation"
    config["experiments"]["tuned"] = {"choices": TUNED[:2], "seeds": [0], "chosen_on": "public"}
    with pytest.raises(ExperimentError, match=r"tuned.choices\[0\]: no tuning cell \(holdout public\)"):
        check_experiments(validate_config(config))  # nothing is tuned on public proxies
    config["experiments"]["dp_tuning_all"]["holdout"] = ["validation", "public"]
    check_experiments(validate_config(config))
    entry = {"mode": "federated", "placement": "all", "epsilon": 5, "max_grad_norm": 1.0, "lr": 0.1}
    config["experiments"]["tuned"]["choices"] = [entry]
    with pytest.raises(ExperimentError, match=r"mode federated and dp all-eps5-delta1e-05"):
        check_experiments(validate_config(config))  # ε = 5 was never a candidate


@pytest.mark.parametrize(
    "extra, entry, message",
    [
        ({"lr": [0.1]}, {}, r"experiments.tuned: choices states each cell's setting; drop lr"),
        ({}, {"epsilon": None}, r"experiments.tuned.choices\[2\]: placement 'all' needs an epsilon"),
        ({}, {"placement": "client_level", "mode": "large_only"}, r"choices\[2\]: client-level DP .* mode large_only"),
        ({}, {"max_grad_norm": 0}, r"experiments.tuned.choices.2.max_grad_norm"),
    ],
)
def test_bad_choices_are_named(extra, entry, message):
    rows = copy.deepcopy(TUNED)
    rows[2].update(entry)
    rows[2] = {k: v for k, v in rows[2].items() if v is not None}
    config = copy.deepcopy(STUDY)
    config["experiments"]["tuned"] = {"choices": rows, "seeds": [0], **extra}
    with pytest.raises(ConfigError, match=message):
        check_experiments(validate_config(config))


@pytest.mark.parametrize(
    "config_file, results",
    [("config.yaml", "dp_selection.csv"), ("pneumonia.yaml", "pneumonia_mnist/dp_selection.csv")],
)
def test_tuned_figures_train_the_settings_the_dp_selection_chose(config_file, results):
    """A shipped config's choices are its committed dp_selection's chosen rows: per holdout the
    tuning experiments ran, one per setting they cover, in the experiment chosen on it."""
    import pandas as pd

    config = validate_config(yaml.safe_load((REPO / "config" / config_file).read_text()))
    table = pd.read_csv(REPO / "docs" / "results" / results)
    tuning = [
        c for n, s in config["experiments"].items() if n.startswith("dp_tuning") for c in experiment_cells(config, n)
    ]
    assert {c.holdout for c in tuning} == set(table["holdout"])
    tuned = {
        name: spec for name, spec in config["experiments"].items() if "choices" in spec and name.startswith("dp_tuned")
    }
    assert sorted(chosen_on(spec) for spec in tuned.values()) == sorted(set(table["holdout"]))
    for name, spec in tuned.items():
        rows = table[table["holdout"] == chosen_on(spec)]
        chosen = rows[rows["chosen"]]
        assert len(chosen) == len(rows.groupby(["mode", "placement", "epsilon"], dropna=False)), name
        cells = {(c.mode, c.dp, c.optim) for c in experiment_cells(config, name)}
        assert cells == set(zip(chosen["mode"], chosen["dp"], chosen["optim"], strict=True)), name
        trained = {(c.mode, c.dp, c.optim) for c in tuning if c.holdout == chosen_on(spec)}
        assert len(rows) == len(trained)  # every candidate was trained and read


def test_a_renamed_experiments_figure_is_skipped_with_its_reason():
    config = copy.deepcopy(STUDY)
    config["experiments"]["my_remedies"] = config["experiments"].pop("remedies")
    config = validate_config(config)
    status = figure_status(config)
    assert status[8] == "fig8: needs experiments.remedies in the config" and status[9] == ""
    assert 8 not in configured_figures(config)
    assert "fedhet: Figure 8 skipped: fig8: needs experiments.remedies in the config" in skipped_figures_text(config)
    # the study's config builds every figure but the scanner shift's (PneumoniaMNIST's) and the
    # many hospitals' (config/many_hospitals.yaml)
    assert skipped_figures_text(STUDY).splitlines() == [
        "fedhet: Figure 10 skipped: fig10: needs experiments.scanner_shift in the config",
        "fedhet: Figure 14 skipped: fig14: needs experiments.many_total in the config",
        "fedhet: Figure 15 skipped: fig15: needs experiments.many_size in the config",
    ]


ONE_BUDGET = {"epsilon": [1], "delta": 1e-5, "max_grad_norm": 1.0}


@pytest.mark.parametrize(
    "change, at",
    [
        ({"modes": ["federated", "local"], "dp": {**ONE_BUDGET, "placement": ["client_level"]}}, "modes"),
        ({"algorithms": ["fedavg", "ifca-k2"], "dp": {**ONE_BUDGET, "placement": ["all"]}}, "algorithms[1]"),
        ({"algorithms": ["fedavg", "ifca-k2"], "dp": {**ONE_BUDGET, "placement": ["client_level"]}}, "algorithms[1]"),
    ],
)
def test_the_grid_and_a_cell_refuse_a_setting_for_the_same_reason(change, at):
    """One check (fedhet.workflow.settings) decides for the grid, before any job, and for
    run_cell: the grid's error is the cell's reason, located at the config key."""
    from fedhet.workflow.algorithms import AlgorithmSpec
    from fedhet.workflow.settings import setting_problem

    config = copy.deepcopy(STUDY)
    config["experiments"] = {"mine": {"seeds": [0], **change}}
    config = validate_config(config)
    cells = experiment_cells(config, "mine")
    reasons = [setting_problem(c.mode, AlgorithmSpec.parse(c.algorithm), DPSpec.parse(c.dp)) for c in cells]
    reason = next(r[1] for r in reasons if r is not None)
    with pytest.raises(ExperimentError) as caught:
        check_experiments(config)
    assert str(caught.value) == f"experiments.mine.{at}: {reason}"


MANY = yaml.safe_load((REPO / "config" / "many_hospitals.yaml").read_text())


def many_config(**changes) -> dict:
    config = copy.deepcopy(STUDY)
    config.update({k: v for k, v in MANY.items() if k != "training"}, **changes)
    config["training"] = {**config["training"], **MANY["training"], **changes.pop("training", {})}
    return validate_config(config)


def test_a_fixed_total_shares_the_groups_records_among_its_hospitals():
    points = grid_points(many_config(), "many_total")
    sizes = {dict(p.values)["small.count"]: p.scenario.groups[1].size for p in points}
    assert sizes == {4: 3000, 16: 750, 64: 188, 256: 47}  # 12,000 / N, rounded
    check_experiments(many_config())  # the largest N still fits the pool


def test_the_many_hospitals_figures_draw_each_dp_setting_of_federated_cells():
    config = many_config()
    cells = figure_cells(config, 14)
    assert {c.dp for c in cells} == {"nodp", "client_level-eps10-delta1e-05-clip1"}
    assert {c.mode for c in cells} == {"federated"} and len(cells) == 4 * 2 * 10
    assert 14 in configured_figures(config) and 15 in configured_figures(config)


def test_a_fraction_that_expects_no_hospital_in_a_round_is_refused_naming_the_key():
    config = many_config(training={"client_fraction": 0.1})
    with pytest.raises(ExperimentError, match=r"training.client_fraction: 0.1 of the 5 hospitals of the core"):
        check_experiments(config)
