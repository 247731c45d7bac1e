from fedhet import setup_logging
from fedhet.cell import run_cell
from fedhet.config import Cell

setup_logging(snakemake.log[0])
w = snakemake.wildcards
config = {k: snakemake.params[k] for k in ("model", "training", "evaluation", "privacy")}
run_cell(
    config,
    Cell(w.scenario, w.mode, int(w.seed), w.dp),
    snakemake.input.partitions,
    snakemake.input.external,
    snakemake.output.metrics,
    snakemake.output.rounds,
    threads=snakemake.threads,
    privacy_out=snakemake.output.privacy,
)
