"""The config schema's enums are the code's registries: a new mode, placement, holdout,
dataset, optimiser, DP engine, device or shift kind added on one side fails here until the
other side has it too."""

import re

import pytest
import yaml

from conftest import REPO
from fedhet.data.datasets import DATASETS
from fedhet.data.holdout import HOLDOUTS
from fedhet.data.shift import KINDS
from fedhet.device import DEVICES
from fedhet.privacy.audit import AUDIT_MODES
from fedhet.workflow.experiments import GRID_FIELDS, TUNINGS
from fedhet.workflow.specs import (
    CLIENT_SAMPLINGS,
    GRAD_SAMPLE_MODES,
    HOSPITAL_TYPES,
    MODE_TAKES_ALGORITHM,
    OPTIMIZERS,
    PLACEMENTS,
)

SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
DEFS, TOP = SCHEMA["definitions"], SCHEMA["properties"]
EXPERIMENT = DEFS["experiment"]["properties"]
CHOICE = EXPERIMENT["choices"]["items"]["properties"]
MODES = tuple(MODE_TAKES_ALGORITHM)


@pytest.mark.parametrize(
    "where, enum, registry",
    [
        ("modes", TOP["modes"]["items"]["enum"], MODES),
        ("experiments.<name>.modes", EXPERIMENT["modes"]["items"]["enum"], MODES),
        ("experiments.<name>.choices[].mode", CHOICE["mode"]["enum"], MODES),
        ("experiments.<name>.choices[].placement", CHOICE["placement"]["enum"], PLACEMENTS),
        (
            "experiments.<name>.dp.placement",
            DEFS["dp_settings"]["properties"]["placement"]["items"]["enum"],
            PLACEMENTS,
        ),
        ("experiments.<name>.holdout", EXPERIMENT["holdout"]["oneOf"][0]["enum"], HOLDOUTS),
        ("experiments.<name>.holdout (list)", EXPERIMENT["holdout"]["oneOf"][1]["items"]["enum"], HOLDOUTS[1:]),
        ("experiments.<name>.chosen_on", EXPERIMENT["chosen_on"]["enum"], tuple(t for t in TUNINGS if t != "fixed")),
        ("hospitals[].type", DEFS["hospital_group"]["properties"]["type"]["enum"], HOSPITAL_TYPES),
        ("data.dataset", TOP["data"]["properties"]["dataset"]["enum"], tuple(DATASETS)),
        ("training.client_sampling", TOP["training"]["properties"]["client_sampling"]["enum"], CLIENT_SAMPLINGS),
        ("training.optimizer", TOP["training"]["properties"]["optimizer"]["enum"], OPTIMIZERS),
        ("privacy.grad_sample_mode", TOP["privacy"]["properties"]["grad_sample_mode"]["enum"], GRAD_SAMPLE_MODES),
        ("device", TOP["device"]["enum"], DEVICES),
        ("audit.mode", TOP["audit"]["properties"]["mode"]["enum"], AUDIT_MODES),
    ],
)
def test_schema_enum_is_the_registry(where, enum, registry):
    assert tuple(enum) == tuple(registry), where


def test_grid_fields_and_shift_kinds_are_the_codes():
    pattern = EXPERIMENT["grid"]["propertyNames"]["pattern"]
    assert re.search(r"\(([a-z_|]+)\)", pattern).group(1).split("|") == list(GRID_FIELDS)
    described = DEFS["hospital_group"]["properties"]["shift"]["description"]
    kinds = re.search(r"with kind (.+?) \(fedhet/data/shift.py\)", " ".join(described.split())).group(1)
    assert re.split(r", | or ", kinds) == list(KINDS)
