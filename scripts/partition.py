from pathlib import Path

from fedhet import setup_logging
from fedhet.config import parse_seed_key
from fedhet.data import binary_labels, load_source
from fedhet.partition import Scenario, write_partitions

log = setup_logging(snakemake.log[0])
data = snakemake.params.data
seed, holdout = parse_seed_key(snakemake.wildcards.seed)
source = load_source(data["dataset"], Path(snakemake.input[0]).parent)
info = write_partitions(
    Path(snakemake.output[0]),
    source.pool_images,
    source.pool_labels,
    binary_labels(source.pool_labels, data["abnormal_classes"]),
    Scenario.parse(snakemake.wildcards.scenario),
    seed,
    data["test_fraction"],
    data["validation_fraction"] if holdout == "validation" else None,
)
for h in info["hospitals"]:
    log.info(f"{h['hospital']}: train {h['n_train']} ({h['prevalence_train']:.3f} abnormal), test {h['n_test']}")
