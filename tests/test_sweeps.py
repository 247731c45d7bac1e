"""Sweep statistics on synthetic metric tables whose answers are known by hand."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import REPO
from fedhet.analysis.figures import sweep_figure_data
from fedhet.analysis.sweeps import holm, linear_trend, paired_difference, trend_points, trend_table, trends_from_points
from fedhet.analysis.tables import cost_table
from fedhet.workflow.experiments import apply_point
from fedhet.workflow.figure_specs import SWEEP_FIGURES

HOSPITALS = [{"type": "large", "count": 1, "size": 3000, "abnormal_ratio": 0.5}]
HOSPITALS.append({"type": "small", "count": 4, "size": 300, "abnormal_ratio": 0.1})
X = [0.1, 0.2, 0.3, 0.4, 0.5]
SEED_NOISE = {0: -0.01, 1: 0.0, 2: 0.01}  # sums to zero, the same at every x
SMALL_SPREAD = [-0.02, -0.01, 0.01, 0.02]  # small hospitals around their mean


def scenario(large_ratio: float, small_ratio: float = 0.1, count: int | None = None) -> str:
    values = {"large.abnormal_ratio": large_ratio, "small.abnormal_ratio": small_ratio}
    if count is not None:
        values["large.abnormal_count"] = count
    return apply_point(HOSPITALS, values, "test").key()


def metrics_table(curve, scenarios=None, metric: str = "recall") -> pd.DataFrame:
    """Tidy cell metrics: every hospital's value is ``curve(x, seed, type)`` (+ a spread
    that averages out over the small hospitals)."""
    rows = []
    for x in X:
        key = scenarios(x) if scenarios else scenario(x)
        for seed in SEED_NOISE:
            hospitals = [("large_1", "large", 0.0)]
            hospitals += [(f"small_{i + 1}", "small", d) for i, d in enumerate(SMALL_SPREAD)]
            for name, type_, spread in hospitals:
                rows.append(
                    {
                        "scenario": key,
                        "mode": "federated",
                        "algorithm": "fedavg",
                        "dp": "nodp",
                        "holdout": "test",
                        "optim": "lr0.01",
                        "seed": seed,
                        "hospital": name,
                        "hospital_type": type_,
                        "metric": metric,
                        "value": curve(x, seed, type_) + spread,
                    }
                )
    return pd.DataFrame(rows)


def linear(x, seed, type_):
    return 0.5 + 0.4 * x + SEED_NOISE[seed] if type_ == "small" else 0.9


SEEDS = np.repeat([0, 1, 2], len(X))  # seed of each point of ``np.tile(X, 3)``


def test_linear_trend_is_a_t_test_of_per_seed_slopes():
    # Seed slopes 0.3, 0.4, 0.5 exactly: mean 0.4, sd 0.1, se 0.1 / sqrt(3) = 0.0577350;
    # t(0.975, 2) = 4.302653, half-width 0.248414; t = 6.928203, p = 2 * sf(t, 2) = 0.0202.
    x = np.tile(X, 3)
    y = np.array([0.5 + (0.3 + 0.1 * s) * xi for s in range(3) for xi in X])
    fit = linear_trend(x, y, SEEDS)
    assert fit["slope"] == pytest.approx(0.4, abs=1e-12) and fit["slope_sd_seeds"] == pytest.approx(0.1)
    assert fit["ci_high"] - fit["slope"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert fit["p_value"] == pytest.approx(0.020204, rel=1e-3)
    assert (fit["n_points"], fit["n_seeds"], fit["method"]) == (15, 3, "per-seed slopes, t across seeds")
    assert fit["spearman_rho"] == pytest.approx(1.0)


def test_blocked_interval_is_wider_than_pooled_when_slopes_vary_by_seed():
    rng = np.random.default_rng(0)
    ratios = np.linspace(0.1, 0.5, 9)
    x = np.tile(ratios, 3)
    seed = np.repeat([0, 1, 2], len(ratios))
    slopes = np.array([0.5, 1.5, -0.2])
    y = 0.5 + slopes[seed] * x + rng.normal(0, 0.01, len(x))
    fit = linear_trend(x, y, seed)
    pooled = stats.linregress(x, y)
    pooled_half = stats.t.ppf(0.975, len(x) - 2) * pooled.stderr
    assert fit["slope"] == pytest.approx(pooled.slope)  # balanced: the same estimate
    assert fit["ci_high"] - fit["ci_low"] > 2 * pooled_half
    assert fit["p_value"] > pooled.pvalue
    assert fit["slope_sd_seeds"] == pytest.approx(np.std(slopes, ddof=1), abs=0.05)


def test_shared_slope_is_found_across_seeds():
    rng = np.random.default_rng(1)
    ratios = np.linspace(0.1, 0.5, 9)
    x = np.tile(ratios, 3)
    seed = np.repeat([0, 1, 2], len(ratios))
    y = 0.6 + 0.4 * x + np.array([-0.02, 0.0, 0.03])[seed] + rng.normal(0, 0.01, len(x))
    fit = linear_trend(x, y, seed)
    assert fit["slope"] == pytest.approx(0.4, abs=0.03)
    assert fit["ci_low"] < 0.4 < fit["ci_high"] and fit["p_value"] < 0.05


def test_a_single_seed_has_no_test():
    fit = linear_trend(np.array(X), np.array([0.5 + 0.4 * x for x in X]), np.zeros(5, dtype=int))
    assert fit["slope"] == pytest.approx(0.4) and fit["n_seeds"] == 1
    assert all(math.isnan(fit[k]) for k in ("p_value", "ci_low", "ci_high", "slope_sd_seeds"))
    assert "single seed" in fit["note"]
    table = trends_from_points(points_frame([0], lambda x, s: 0.5 + 0.4 * x))
    assert math.isnan(table.loc[0, "p_holm"]) and table.loc[0, "verdict"] == "no clear trend"


def test_flat_and_trendless_curves():
    flat = linear_trend(np.tile(X, 3), np.ones(15), SEEDS)
    assert (flat["slope"], flat["p_value"], flat["note"]) == (0.0, 1.0, "metric constant")
    seed_only = linear_trend(np.tile(X, 3), np.array([0.7 + SEED_NOISE[s] for s in SEEDS]), SEEDS)
    assert seed_only["slope"] == pytest.approx(0.0, abs=1e-12) and seed_only["p_value"] == pytest.approx(1.0)
    few = linear_trend(np.array([0.1, 0.1]), np.array([0.5, 0.6]), np.array([0, 1]))
    assert math.isnan(few["slope"]) and "no seed with 2" in few["note"]


def test_nan_values_are_dropped():
    x = np.array([0.1, 0.2, 0.3, 0.4] * 2)
    fit = linear_trend(x, np.array([0.1, np.nan, 0.3, 0.4, 0.2, 0.4, 0.6, 0.8]), np.repeat([0, 1], 4))
    assert fit["n_points"] == 7 and fit["slope"] == pytest.approx(1.5)


def points_frame(seeds, curve) -> pd.DataFrame:
    rows = [
        {"experiment": "fixed_size", "dp": "nodp", "curve": "small hospitals (mean)", "metric": "recall"}
        | {"x": "large.abnormal_ratio", "small.abnormal_ratio": 0.1, "x_value": x, "seed": s, "value": curve(x, s)}
        for s in seeds
        for x in X
    ]
    return pd.DataFrame(rows)


def test_holm_by_hand():
    adjusted = holm(pd.Series([0.01, 0.04, 0.03, np.nan]))
    assert adjusted.iloc[:3].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adjusted.iloc[3])


def test_trend_table_per_curve():
    metrics = metrics_table(linear)
    experiments = {"fixed_size": {"grid": {"large.abnormal_ratio": X}, "scenarios": [scenario(x) for x in X]}}
    table = trend_table(metrics, experiments).set_index("curve")
    small, large = table.loc["small hospitals (mean)"], table.loc["large hospital"]
    assert small["slope"] == pytest.approx(0.4) and small["verdict"] == "rises"
    assert small["slope_per_10pp"] == pytest.approx(0.04) and small["n_seeds"] == 3
    assert large["slope"] == 0.0 and large["verdict"] == "no clear trend"


def test_trend_points_round_trip_through_csv(tmp_path):
    """trend_points.csv → trends.csv is one pure function: the table from the points read
    back equals trend_table on the cell metrics."""
    tilt = {0: -0.1, 1: 0.0, 2: 0.15}  # per-seed slopes 0.3, 0.4, 0.55
    metrics = pd.concat(
        [
            metrics_table(lambda x, s, t: 0.5 + (0.4 + tilt[s]) * x if t == "small" else 0.9 - 0.1 * x, metric=m)
            for m in ("recall", "auroc")
        ]
    )
    experiments = {"fixed_size": {"grid": {"large.abnormal_ratio": X}, "scenarios": [scenario(x) for x in X]}}
    points = trend_points(metrics, experiments)
    assert list(points.columns) == ["experiment", "dp", "curve", "metric", "x", "x_value", "seed", "value"]
    assert len(points) == 2 * 2 * len(X) * len(SEED_NOISE)  # curves × metrics × ratios × seeds
    points.to_csv(tmp_path / "trend_points.csv", index=False)
    again = pd.read_csv(tmp_path / "trend_points.csv")
    table = trend_table(metrics, experiments)
    pd.testing.assert_frame_equal(trends_from_points(again), table)
    small = table[(table["curve"] == "small hospitals (mean)") & (table["metric"] == "recall")].iloc[0]
    assert small["slope"] == pytest.approx(np.mean([0.3, 0.4, 0.55]))
    assert small["slope_sd_seeds"] == pytest.approx(np.std([0.3, 0.4, 0.55], ddof=1))
    assert small["n_points"] == 15 and small["n_seeds"] == 3


def test_figure_data_mean_and_ci_over_seeds():
    metrics = pd.concat([metrics_table(linear), metrics_table(linear, metric="auroc")])
    data = sweep_figure_data(metrics, SWEEP_FIGURES[2])
    small = data[(data["curve"] == "small hospitals (mean)") & (data["metric"] == "recall")].set_index("x")
    # Seeds give mean - 0.01, mean, mean + 0.01: sd 0.01, half-width t(0.975, 2) * 0.01 / sqrt(3).
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert small["mean"].tolist() == pytest.approx([0.5 + 0.4 * x for x in X])
    assert (small["ci_high"] - small["mean"]).tolist() == pytest.approx([half] * 5, rel=1e-6)
    assert set(small["n"]) == {3}
    assert sorted(data["panel"].unique()) == ["(a) recall", "(b) AUROC"]


def test_paired_difference_between_grids():
    size = metrics_table(linear)
    count = metrics_table(lambda x, s, t: linear(x, s, t) - 0.1 * x, scenarios=lambda x: scenario(x, count=300))
    keys = ["large.abnormal_ratio", "small.abnormal_ratio"]
    diff = paired_difference(
        pd.concat([size, count]), size["scenario"].unique(), count["scenario"].unique(), keys, ("recall",)
    )
    small = diff[diff["curve"] == "small hospitals (mean)"].set_index("large.abnormal_ratio")
    # At 10% both grids are the same cell, so there is nothing to compare.
    assert small.index.tolist() == [0.2, 0.3, 0.4, 0.5]
    assert small["mean"].tolist() == pytest.approx([0.02, 0.03, 0.04, 0.05])


def test_cost_projection():
    runtime = pd.DataFrame(
        {
            "scenario": ["a", "a", "b", "c"],
            "mode": "federated",
            "algorithm": "fedavg",
            "dp": "nodp",
            "holdout": "test",
            "optim": "lr0.01",
            "seed": [0, 1, 0, 0],
            "seconds": [100.0, 100.0, 50.0, 400.0],
            "cpu_seconds": [90.0, 110.0, 50.0, 350.0],
        }
    )
    grid = [
        "a/federated/fedavg/nodp/lr0.01/seed0",
        "a/federated/fedavg/nodp/lr0.01/seed1",
        "b/federated/fedavg/nodp/lr0.01/seed0",
    ]
    cost = cost_table(runtime, {"grid": grid}, [2, 64]).set_index("cells")
    assert cost.loc["grid", "n_cells"] == 3 and cost.loc["grid", "mean_seconds"] == pytest.approx(250 / 3)
    assert cost.loc["grid", "wall_hours_2_cores"] == pytest.approx(125 / 3600)  # 250 CPU s / 2
    assert cost.loc["grid", "wall_hours_64_cores"] == pytest.approx(100 / 3600)  # the longest cell
    assert cost.loc["all cells", "cpu_hours"] == pytest.approx(600 / 3600)


def test_dp_cells_on_a_grid_point_stay_out_of_the_no_dp_curves():
    plain = metrics_table(linear)
    private = metrics_table(lambda x, s, t: 0.1).assign(dp="all-eps1-delta1e-05-clip1")
    metrics = pd.concat([plain, private])
    experiments = {"fixed_size": {"grid": {"large.abnormal_ratio": X}, "scenarios": [scenario(x) for x in X]}}
    table = trend_table(metrics, experiments)
    assert set(table["dp"]) == {"nodp", "all-eps1-delta1e-05-clip1"}
    small = table[(table["curve"] == "small hospitals (mean)") & (table["dp"] == "nodp")]
    assert small["slope"].tolist() == pytest.approx([0.4])
    data = sweep_figure_data(metrics, SWEEP_FIGURES[2])
    assert data[data["curve"] == "small hospitals (mean)"]["mean"].min() > 0.5


def test_privacy_figure_draws_clipping_only_cells_as_a_flat_reference():
    """Figure 7 from synthetic cells: DP at ε = 1, 10, the clipping-only control (ε = ∞) and
    no DP. The control is a reference like no DP, labelled by its curve, and the chart draws."""
    from fedhet.analysis.privacy_figures import privacy_chart, privacy_figure_data
    from fedhet.workflow.figure_specs import PRIVACY_FIGURES

    value = {"nodp": 0.95, "all-epsinf-delta1e-05-clip1": 0.93, "all-eps10-delta1e-05-clip1": 0.9}
    value["all-eps1-delta1e-05-clip1"] = 0.85
    value.update({"small_hospitals-eps1-delta1e-05-clip1": 0.88, "small_hospitals-eps10-delta1e-05-clip1": 0.91})
    rows = [
        {
            "scenario": scenario(0.5),
            "mode": "federated",
            "algorithm": "fedavg",
            "dp": dp,
            "holdout": "test",
            "optim": "lr0.01",
            "seed": seed,
            "hospital": f"{kind}_1",
            "hospital_type": kind,
            "metric": metric,
            "value": v + noise,
        }
        for dp, v in value.items()
        for seed, noise in SEED_NOISE.items()
        for kind in ("large", "small")
        for metric in ("recall", "auroc")
    ]
    data = privacy_figure_data(pd.DataFrame(rows), PRIVACY_FIGURES[7])
    small = data[(data["hospital_type"] == "small") & (data["metric"] == "recall")].set_index("curve")
    clip = small.loc["federated, DP at every hospital, clipping only (ε = ∞)"]
    assert clip["reference"] and np.isinf(clip["epsilon"]) and clip["mean"] == pytest.approx(0.93)
    assert small.loc["federated, no DP", "reference"]
    curves = small[~small["reference"]]
    assert sorted(curves["epsilon"].unique()) == [1, 10]  # the ε axis holds finite budgets only
    spec = privacy_chart(data, PRIVACY_FIGURES[7], {"width": 100, "height": 80, "font_size": 10}).to_dict()
    assert "clipping without noise (ε = ∞)" in json.dumps(spec, ensure_ascii=False)


def test_scanner_shift_figure_has_a_curve_per_mode_against_severity(tmp_path):
    """Figure 10 from synthetic cells: the small hospitals' metric falls with blur severity
    when they train alone, less when federated; the x axis is the severity (0 = none)."""
    from fedhet.analysis.chart import save_svg
    from fedhet.analysis.figures import figure_chart, figure_data
    from fedhet.workflow.figure_specs import MODE_FIGURES, figure_cells

    drop = {"federated": 0.01, "local": 0.05, "large_only": 0.03}
    shifts = {"none": 0, "blur2": 2, "blur4": 4}
    rows = [
        {
            "scenario": apply_point(HOSPITALS, {"small.shift": shift}, "test").key(),
            "mode": mode,
            "algorithm": "fedavg",
            "dp": "nodp",
            "holdout": "test",
            "optim": "lr0.01",
            "seed": seed,
            "hospital": f"{kind}_1",
            "hospital_type": kind,
            "metric": metric,
            "value": 0.95 - (drop[mode] * severity if kind == "small" else 0.0) + noise,
        }
        for mode in drop
        for shift, severity in shifts.items()
        for seed, noise in SEED_NOISE.items()
        for kind in ("large", "small")
        for metric in MODE_FIGURES[10].metrics
    ]
    data = figure_data(pd.DataFrame(rows), 10)
    small = data[(data["hospital_type"] == "small") & (data["metric"] == "auroc")].set_index(["curve", "x"])
    assert sorted(data["x"].unique()) == [0, 2, 4]
    assert small.loc[("small only", 4), "mean"] == pytest.approx(0.95 - 0.2)
    assert small.loc[("federated", 4), "mean"] == pytest.approx(0.95 - 0.04) and small["n"].eq(3).all()
    large = data[data["hospital_type"] == "large"]
    assert np.allclose(large["mean"], 0.95)
    save_svg(figure_chart(data, 10, {"width": 100, "height": 80, "font_size": 10}), tmp_path / "fig10.svg")
    assert "small hospitals' shift severity (0: none)" in (tmp_path / "fig10.svg").read_text()
    config = {
        "hospitals": HOSPITALS,
        "seeds": [0],
        "experiments": {"scanner_shift": {"grid": {"small.shift": list(shifts)}, "modes": list(drop), "seeds": [0, 1]}},
    }
    cells = figure_cells(config, 10)
    assert len(cells) == 3 * 3 * 2 and {c.scenario.endswith("_blur4") for c in cells} == {True, False}


def test_figure_9_says_its_epsilon_does_not_count_the_remedies_choice(tmp_path):
    """The remedies under DP took parameters chosen without DP; the figure says so, Figure 8
    (no DP) does not need to."""
    from fedhet.analysis.chart import save_svg
    from fedhet.analysis.figures import figure_chart

    style = {"width": 100, "height": 80, "font_size": 10}
    for number in (8, 9):
        data = pd.read_csv(REPO / "docs" / "results" / f"fig{number}.csv")
        save_svg(figure_chart(data, number, style), tmp_path / f"fig{number}.svg")
    assert "ε counts training only, not that choice" in (tmp_path / "fig9.svg").read_text()
    assert "not that choice" not in (tmp_path / "fig8.svg").read_text()
