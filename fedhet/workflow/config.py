"""Configuration: schema validation, typed specs, and the grid of training cells.

Owns the translation from the YAML config to ``ModelSpec``/``TrainSpec``/``Scenario`` and
to ``Cell`` objects, whose output paths are functions of their parameters alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from fedhet.data.datasets import dataset_spec
from fedhet.data.holdout import HOLDOUTS
from fedhet.data.partition import Scenario
from fedhet.data.shift import normalise_shift
from fedhet.data.sources import DataError, check_abnormal_classes
from fedhet.workflow.keys import CELL, PARTITIONS
from fedhet.workflow.specs import ModelSpec, OptimSpec, TrainSpec

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = (
                        sub["default"]
                        if not isinstance(sub["default"], (dict, list))
                        else type(sub["default"])(sub["default"])
                    )
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def validate_config(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Fill defaults and validate in place; raise ``ConfigError`` naming the first bad key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"config key {key}: {err.message}")
    try:
        check_abnormal_classes(dataset_spec(config["data"]["dataset"]), config["data"]["abnormal_classes"])
    except DataError as err:
        raise ConfigError(str(err)) from None
    for i, group in enumerate(config["hospitals"]):
        try:
            normalise_shift(group.get("shift"))
        except ValueError as err:
            raise ConfigError(f"config key hospitals.{i}.shift: {err}") from None
    return config


# Keys an override file states in full: a file that has one replaces the value before it instead
# of merging into it, so a config can run exactly its own experiments (or none).
REPLACED_KEYS = ("experiments",)


def replace_stated_keys(config: dict, override_files: list[Path]) -> dict:
    """``config`` (the defaults with the --configfile files merged in, key by key) with each
    ``REPLACED_KEYS`` entry taken whole from the last of ``override_files`` that states it."""
    for path in override_files:
        stated = yaml.safe_load(Path(path).read_text()) or {}
        for key in REPLACED_KEYS:
            if key in stated:
                config[key] = copy.deepcopy(stated[key]) if stated[key] is not None else {}
    return config


def merged_config(paths: list[Path]) -> dict:
    """The config Snakemake builds from ``--configfile`` files: each merged into the one before,
    key by key (as Snakemake does), then ``REPLACED_KEYS`` taken whole; validated."""

    def merge(base: dict, extra: dict) -> dict:
        for key, value in extra.items():
            base[key] = merge(base.get(key) or {}, value) if isinstance(value, dict) else value
        return base

    config: dict = {}
    for path in paths:
        try:
            merge(config, yaml.safe_load(Path(path).read_text()) or {})
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
    return validate_config(replace_stated_keys(config, paths[1:]))


def load_config(path: Path, overrides: dict | None = None) -> dict:
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    config.update(overrides or {})
    return validate_config(config)


DOWNLOADS = "results/data"  # the official files, shared by every run and configuration


def results_root(config: dict) -> str:
    """Where a configuration's outputs live: ``results/[<run>/]<dataset>``. The dataset is part
    of every path that depends on it, and a ``run`` name keeps configurations side by side."""
    run = config.get("run", "")
    return "/".join(["results", *([run] if run else []), config["data"]["dataset"]])


def model_spec(config: dict) -> ModelSpec:
    """The config's model, sized for its dataset's images (side and channels)."""
    dataset = dataset_spec(config.get("data", {}).get("dataset", "fashion_mnist"))
    return ModelSpec(**config["model"], image_size=dataset.image_size, channels=dataset.channels)


def train_spec(config: dict, optim: str | None = None) -> TrainSpec:
    """The config's training settings, with a cell's optimiser key (``OptimSpec``) in place."""
    spec = TrainSpec(**config["training"])
    if not optim:
        return spec
    chosen = OptimSpec.parse(optim)
    if "lr" in config["training"] and float(config["training"]["lr"]) != chosen.lr:
        # The workflow hands cells the training slice without lr; a caller that states one must
        # mean the cell's, or a cell would silently train with another rate than its path says.
        raise ValueError(f"training.lr {config['training']['lr']:g} disagrees with the cell's optimiser key {optim!r}")
    return chosen.apply(spec)


def optim_key(config: dict) -> str:
    """The optimiser key of the config's own training settings: every cell a grid does not
    give another learning rate has it."""
    return OptimSpec(float(config.get("training", {}).get("lr", TrainSpec.lr))).key()


def core_scenario(config: dict) -> Scenario:
    return Scenario.from_config(config["hospitals"])


def seed_key(seed: int, holdout: str = "test") -> str:
    """``seed<k>`` (evaluated on the hospitals' test splits), ``seed<k>-validation`` (trained on
    part of each hospital's training records, evaluated on the rest) or ``seed<k>-public`` (the
    hospitals' public proxies): ``fedhet.data.holdout``."""
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout {holdout!r} is not one of {HOLDOUTS}")
    return f"seed{seed}" if holdout == "test" else f"seed{seed}-{holdout}"


def parse_seed_key(key: str) -> tuple[int, str]:
    """Inverse of ``seed_key``; also takes the bare number of a ``{seed}`` wildcard."""
    number, _, holdout = key.removeprefix("seed").partition("-")
    return int(number), holdout or "test"


@dataclass(frozen=True)
class Cell:
    """One training job. Its path holds every parameter that varies across the grid."""

    scenario: str  # Scenario.key()
    mode: str
    seed: int
    dp: str = "nodp"  # DPSpec.key()
    algorithm: str = "fedavg"  # AlgorithmSpec.key()
    holdout: str = "test"  # what it trains and is evaluated on (fedhet.data.holdout.HOLDOUTS)
    optim: str = OptimSpec().key()  # OptimSpec.key(): a grid passes its config's (optim_key)

    def directory(self, root: str = "results") -> str:
        return CELL.path(root, **self.fields())

    def key(self) -> str:
        """``<scenario>/<mode>/<algorithm>/<dp>/<optim>/seed<k>``: the cell's path below ``cells/``
        (``fedhet.workflow.keys.CELL``)."""
        return CELL.key(**self.fields())

    def fields(self) -> dict[str, str]:
        """The key's fields as they appear in its path (``fedhet.workflow.keys.CELL``)."""
        seed = seed_key(self.seed, self.holdout).removeprefix("seed")
        return {
            "scenario": self.scenario,
            "mode": self.mode,
            "algorithm": self.algorithm,
            "dp": self.dp,
            "optim": self.optim,
            "seed": seed,
        }

    @classmethod
    def parse(cls, key: str) -> Cell:
        """Inverse of ``key``."""
        f = CELL.parse(key)
        number, holdout = parse_seed_key(f["seed"])
        return cls(
            f["scenario"], f["mode"], number, f["dp"], f["algorithm"], holdout, OptimSpec.parse(f["optim"]).key()
        )

    def labels(self) -> dict:
        """The cell's parameters as the columns of its output tables."""
        return {
            "scenario": self.scenario,
            "mode": self.mode,
            "algorithm": self.algorithm,
            "dp": self.dp,
            "seed": self.seed,
            "holdout": self.holdout,
            "optim": self.optim,
        }

    def partitions(self, root: str = "results") -> str:
        return PARTITIONS.path(root, scenario=self.scenario, seed=self.fields()["seed"])


def core_cells(config: dict) -> list[Cell]:
    scenario = core_scenario(config).key()
    optim = optim_key(config)
    return [Cell(scenario, mode, seed, optim=optim) for mode in config["modes"] for seed in config["seeds"]]
