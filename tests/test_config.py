import copy

import pytest
import yaml

from conftest import REPO
from fedhet.config import ConfigError, core_cells, validate_config

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
    "path, value, message",
    [
        ("training.lrr", 0.1, r"training: Additional properties .*'lrr'"),
        ("training.rounds", "ten", r"training.rounds: 'ten' is not of type 'integer'"),
        ("training.lr", -1.0, r"training.lr: -1.0 is less than or equal to the minimum of 0"),
        ("hospitals.1.abnormal_ratio", 1.2, r"hospitals.1.abnormal_ratio: 1.2 is greater than the maximum of 1"),
        ("data.test_fraction", 1.0, r"data.test_fraction"),
        ("modes", ["federated", "solo"], r"modes.1: 'solo' is not one of"),
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
    assert cells[0].directory() == "results/cells/large1x30000r0.5-small4x3000r0.1/federated/fedavg/nodp/seed0"


def test_full_scale_run_override_merges_into_the_study_config():
    from snakemake.utils import update_config

    from fedhet.experiments import all_experiment_cells, experiment_cells

    config = copy.deepcopy(BASE)
    update_config(config, yaml.safe_load((REPO / "config" / "full_scale_run.yaml").read_text()))
    config = validate_config(config)
    assert config["experiments"]["fixed_size"]["grid"] == BASE["experiments"]["fixed_size"]["grid"]
    assert {c.seed for c in experiment_cells(config, "fixed_count")} == {0, 1, 2}
    assert len(experiment_cells(config, "dp_all")) == 3 * 2 * 3
    # sweeps + DP grids + selection (15 algorithms on validation) + remedies (4 beside FedAvg at
    # 2 points; FedAvg's cells are the sweeps') + remedies under DP (3 beside FedAvg at 2 budgets)
    assert len(all_experiment_cells(config)) == 68 * 3 + 3 * 3 * 3 + 15 * 3 + 4 * 2 * 3 + 3 * 2 * 3
