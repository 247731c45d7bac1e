from fedhet import setup_logging
from fedhet.cell import run_cell
from fedhet.config import Cell, parse_seed_key

setup_logging(snakemake.log[0])
w = snakemake.wildcards
seed, holdout = parse_seed_key(w.seed)
config = {k: snakemake.params[k] for k in ("model", "training", "evaluation", "privacy")}
config["device"] = snakemake.config["device"]  # where it runs: not a rerun trigger (rules/train.smk)
run_cell(
    config,
    Cell(w.scenario, w.mode, seed, w.dp, w.algorithm, holdout, w.optim),
    snakemake.input.partitions,
    snakemake.input.external,
    snakemake.output.metrics,
    snakemake.output.rounds,
    threads=snakemake.threads,
    privacy_out=snakemake.output.privacy,
    shared_path=snakemake.input.get("shared"),
)
