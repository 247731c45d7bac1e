from fedhet import setup_logging
from fedhet.training.cell import run_cell
from fedhet.workflow.config import Cell
from fedhet.workflow.keys import CELL

setup_logging(snakemake.log[0])
config = {k: snakemake.params[k] for k in ("model", "training", "evaluation", "privacy")}
config["device"] = snakemake.config["device"]  # where it runs: not a rerun trigger (rules/train.smk)
run_cell(
    config,
    Cell.parse(CELL.key_of(snakemake.wildcards)),
    snakemake.input.partitions,
    snakemake.input.external,
    snakemake.output.metrics,
    snakemake.output.rounds,
    threads=snakemake.threads,
    privacy_out=snakemake.output.privacy,
    shared_path=snakemake.input.get("shared"),
)
