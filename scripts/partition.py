from pathlib import Path

from fedhet import setup_logging
from fedhet.data.datasets import load_source
from fedhet.data.holdout import write_holdout_partitions
from fedhet.data.partition import Scenario
from fedhet.workflow.config import parse_seed_key

log = setup_logging(snakemake.log[0])
seed, holdout = parse_seed_key(snakemake.wildcards.seed)
source = load_source(snakemake.params.data["dataset"], Path(snakemake.input[0]).parent)
scenario = Scenario.parse(snakemake.wildcards.scenario)
info = write_holdout_partitions(Path(snakemake.output[0]), source, snakemake.params.data, scenario, seed, holdout)
for h in info["hospitals"]:
    log.info(f"{h['hospital']}: train {h['n_train']} ({h['prevalence_train']:.3f} abnormal), test {h['n_test']}")
