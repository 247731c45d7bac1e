from fedhet import setup_logging
from fedhet.privacy.audit import AuditCell
from fedhet.training.canary import CanaryAudit
from fedhet.training.cell import run_cell
from fedhet.workflow.keys import AUDIT_CELL

setup_logging(snakemake.log[0])
audit = AuditCell.parse(AUDIT_CELL.key_of(snakemake.wildcards))
config = {k: snakemake.params[k] for k in ("model", "training", "evaluation", "privacy")}
config["device"] = snakemake.config["device"]
canaries = CanaryAudit.load(audit.canaries, snakemake.input.canaries)
run_cell(
    config,
    audit.cell,
    snakemake.input.partitions,
    None,  # the external set plays no part in an audit
    snakemake.output.metrics,
    snakemake.output.rounds,
    threads=snakemake.threads,
    privacy_out=snakemake.output.privacy,
    audit=(canaries, snakemake.output.scores),
)
