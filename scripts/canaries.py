from pathlib import Path

from fedhet import setup_logging
from fedhet.data.beyond_hospitals import draw_canaries, write_canaries
from fedhet.data.datasets import load_source
from fedhet.data.partition import Scenario
from fedhet.data.sources import binary_labels

log = setup_logging(snakemake.log[0])
data = snakemake.params.data
source = load_source(data["dataset"], Path(snakemake.input[0]).parent)
binary = binary_labels(source.pool_labels, data["abnormal_classes"])
scenario = Scenario.parse(snakemake.wildcards.scenario)
seed, count = int(snakemake.wildcards.seed), int(snakemake.wildcards.m)
canaries = draw_canaries(binary, scenario, seed, data["test_fraction"], count)
write_canaries(snakemake.output[0], source.pool_images, source.pool_labels, canaries)
log.info(f"{count} canaries outside every hospital, labels flipped, {int(canaries.included.sum())} drawn in")
