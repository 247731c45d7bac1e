from pathlib import Path

from fedhet import setup_logging
from fedhet.data.beyond_hospitals import draw_shared, write_shared
from fedhet.data.datasets import load_source
from fedhet.data.partition import Scenario
from fedhet.data.sources import binary_labels
from fedhet.workflow.config import parse_seed_key

log = setup_logging(snakemake.log[0])
data = snakemake.params.data
seed, holdout = parse_seed_key(snakemake.wildcards.seed)
source = load_source(data["dataset"], Path(snakemake.input[0]).parent)
binary = binary_labels(source.pool_labels, data["abnormal_classes"])
scenario = Scenario.parse(snakemake.wildcards.scenario)
index = draw_shared(binary, scenario, seed, data["test_fraction"], float(snakemake.wildcards.beta))
write_shared(snakemake.output[0], source.pool_images, source.pool_labels, binary, index)
log.info(f"shared set G: {len(index)} images, {int(binary[index].sum())} abnormal, disjoint from every hospital")
