import copy

import pytest
import yaml

from conftest import REPO
from fedhet.workflow.config import (
    Cell,
    ConfigError,
    core_cells,
    replace_stated_keys,
    results_root,
    train_spec,
    validate_config,
)
from fedhet.workflow.specs import OptimSpec

BASE = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def with_change(path: str, value):
    config = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    return config


def test_shipped_configs_are_valid():
    for name in ("config.yaml", "quick.yaml"):
        validate_config(yaml.safe_load((REPO / "config" / name).read_text()))


@pytest.mark.parametrize(
    "override", sorted(p.name for p in (REPO / "config").glob("*.yaml") if p.name != "schema.yaml")
)
def test_every_shipped_override_builds_its_grid_on_the_study_config(override):
    """As Snakemake merges them (`--configfile config/config.yaml config/<override>`): valid,
    and every experiment's grid feasible before any job."""
    from snakemake.utils import update_config

    from fedhet.workflow.experiments import check_experiments

    path = REPO / "config" / override
    config = copy.deepcopy(BASE)
    update_config(config, yaml.safe_load(path.read_text()))
    check_experiments(validate_config(replace_stated_keys(config, [path])))


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("training.lrr", 0.1, r"training: Additional properties .*'lrr'"),
        ("training.rounds", "ten", r"training.rounds: 'ten' is not of type 'integer'"),
        ("training.lr", -1.0, r"training.lr: -1.0 is less than or equal to the minimum of 0"),
        ("hospitals.1.abnormal_ratio", 1.2, r"hospitals.1.abnormal_ratio: 1.2 is greater than the maximum of 1"),
        ("data.test_fraction", 1.0, r"data.test_fraction"),
        ("modes", ["federated", "solo"], r"modes.1: 'solo' is not one of"),
        # a hospital type names its role (fedhet.workflow.specs.HOSPITAL_TYPES); another name is refused
        ("hospitals.1.type", "clinic", r"hospitals.1.type: 'clinic' is not one of \['large', 'small'\]"),
    ],
)
def test_bad_values_name_the_key(path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(with_change(path, value))


def test_defaults_are_filled():
    config = validate_config({"hospitals": BASE["hospitals"]})
    assert config["training"]["rounds"] == 10 and config["evaluation"]["threshold"] == 0.5
    assert config["data"]["abnormal_classes"] == [7, 8, 9]


def test_core_cells():
    cells = core_cells(validate_config(copy.deepcopy(BASE)))
    assert len(cells) == len(BASE["modes"]) * len(BASE["seeds"])
    assert cells[0].directory() == "results/cells/large1x30000r0.5-small4x3000r0.1/federated/fedavg/nodp/lr0.01/seed0"


def test_outputs_are_scoped_by_run_name_and_dataset():
    config = validate_config(copy.deepcopy(BASE))
    assert results_root(config) == "results/fashion_mnist"
    pneumonia = {**config, "run": "scanner-v2", "data": {**config["data"], "dataset": "pneumonia_mnist"}}
    assert results_root(pneumonia) == "results/scanner-v2/pneumonia_mnist"
    with pytest.raises(ConfigError, match="config key run"):
        validate_config({**copy.deepcopy(BASE), "run": "../elsewhere"})


def test_full_scale_run_states_its_experiments_and_merges_the_rest():
    from snakemake.utils import update_config

    from fedhet.workflow.experiments import all_experiment_cells, experiment_cells

    path = REPO / "config" / "full_scale_run.yaml"
    config = copy.deepcopy(BASE)
    update_config(config, yaml.safe_load(path.read_text()))  # what Snakemake does with --configfile
    config = validate_config(replace_stated_keys(config, [path]))  # what the Snakefile adds
    assert set(config["experiments"]) == {"fixed_size", "fixed_count", "dp_all", "dp_small"}
    assert config["hospitals"] == BASE["hospitals"] and config["training"] == BASE["training"]
    assert {c.seed for c in experiment_cells(config, "fixed_count")} == {0, 1, 2}
    assert len(experiment_cells(config, "dp_all")) == 3 * 2 * 3
    # the sweeps' 68 scenarios' federated cells and 27 DP cells, 3 seeds each
    assert len(all_experiment_cells(config)) == 68 * 3 + 3 * 3 * 3


def test_the_last_override_file_that_states_experiments_states_them_all(tmp_path):
    mine = {"mine": {"grid": {"small.abnormal_ratio": [0.2]}, "seeds": [0]}}
    files = {"quick": {"experiments": BASE["experiments"]}, "mine": {"experiments": mine}, "seeds": {"seeds": [7]}}
    for name, content in files.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(content))
    paths = [tmp_path / f"{name}.yaml" for name in files]
    config = replace_stated_keys(copy.deepcopy(BASE), paths)
    assert config["experiments"] == mine and config["seeds"] == BASE["seeds"]  # seeds: Snakemake's to merge
    (tmp_path / "none.yaml").write_text("experiments:\n")
    assert replace_stated_keys(copy.deepcopy(BASE), [*paths, tmp_path / "none.yaml"])["experiments"] == {}
    assert replace_stated_keys(copy.deepcopy(BASE), [paths[2]])["experiments"] == BASE["experiments"]


@pytest.mark.parametrize("lr", [0.01, 0.1, 3e-05, 1.5])
def test_cell_keys_round_trip_with_their_learning_rate(lr):
    cell = Cell("large1x30000r0.5-small4x3000r0.1", "large_only", 3, "all-eps1-delta1e-05-clip0.1", "fedavg",
                "validation", OptimSpec(lr).key())  # fmt: skip
    assert Cell.parse(cell.key()) == cell
    assert OptimSpec.parse(cell.optim).lr == lr
    with pytest.raises(ValueError, match="optimiser key 'lr0': expected lr<learning rate > 0>"):
        OptimSpec.parse("lr0")


def test_a_cells_learning_rate_comes_from_its_key():
    config = validate_config(copy.deepcopy(BASE))
    workflow_slice = {**config, "training": {k: v for k, v in config["training"].items() if k != "lr"}}
    assert train_spec(workflow_slice, "lr0.1").lr == 0.1
    assert train_spec(config, "lr0.01").lr == 0.01
    # A caller that states another rate than the cell's key would train a cell its path misnames.
    with pytest.raises(ValueError, match="training.lr 0.01 disagrees with the cell's optimiser key 'lr0.1'"):
        train_spec(config, "lr0.1")
