from fedhet import setup_logging
from fedhet.canary import CanaryAudit
from fedhet.cell import run_cell
from fedhet.config import Cell
from fedhet.specs import CanarySpec

setup_logging(snakemake.log[0])
w = snakemake.wildcards
config = {k: snakemake.params[k] for k in ("model", "training", "evaluation", "privacy")}
config["device"] = snakemake.config["device"]
canaries = CanaryAudit.load(CanarySpec.parse(w.canaries), snakemake.input.canaries)
run_cell(
    config,
    Cell(w.scenario, w.mode, int(w.seed), w.dp, w.algorithm, optim=w.optim),
    snakemake.input.partitions,
    None,  # the external set plays no part in an audit
    snakemake.output.metrics,
    snakemake.output.rounds,
    threads=snakemake.threads,
    privacy_out=snakemake.output.privacy,
    audit=(canaries, snakemake.output.scores),
)
