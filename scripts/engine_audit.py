import torch

from fedhet import setup_logging
from fedhet.data.partition import read_hospital
from fedhet.io import write_parquet_atomic
from fedhet.privacy.accounting import privacy_table
from fedhet.privacy.audit import EngineAudit
from fedhet.training.gradient_audit import run_engine_audit
from fedhet.workflow.config import model_spec, train_spec
from fedhet.workflow.keys import ENGINE_AUDIT
from fedhet.workflow.specs import DPSpec

log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
audit = EngineAudit.parse(ENGINE_AUDIT.key_of(snakemake.wildcards))
config = {"model": snakemake.params.model, "training": snakemake.params.training}
data = read_hospital(f"{snakemake.input.partitions}/{audit.hospital}.parquet", audit.hospital)
dp = DPSpec.parse(audit.dp, **snakemake.params.privacy)
scores, record = run_engine_audit(
    data.train_images,
    data.train_labels,
    model_spec(config),
    train_spec(config, audit.optim),
    dp,
    audit.count,
    audit.seed,
)
write_parquet_atomic(scores, snakemake.output.scores)
write_parquet_atomic(privacy_table([record]), snakemake.output.privacy)
log.info(
    f"{audit.key()}: σ {record.sigma:.4f}, ε accounted {record.epsilon_spent:.4g}, {int(scores.included.sum())} in"
)
