from pathlib import Path

from fedhet import setup_logging
from fedhet.data import binary_labels, load_source
from fedhet.partition import Scenario, write_partitions

log = setup_logging(snakemake.log[0])
data = snakemake.params.data
source = load_source(data["dataset"], Path(snakemake.input[0]).parent)
info = write_partitions(
    Path(snakemake.output[0]),
    source.pool_images,
    source.pool_labels,
    binary_labels(source.pool_labels, data["abnormal_classes"]),
    Scenario.parse(snakemake.wildcards.scenario),
    int(snakemake.wildcards.seed),
    data["test_fraction"],
)
for h in info["hospitals"]:
    log.info(f"{h['hospital']}: train {h['n_train']} ({h['prevalence_train']:.3f} abnormal), test {h['n_test']}")
