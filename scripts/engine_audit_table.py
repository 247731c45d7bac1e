import pandas as pd

from fedhet import setup_logging
from fedhet.io import write_csv_atomic
from fedhet.privacy.audit import EngineAudit, engine_audit_table

log = setup_logging(snakemake.log[0])
p = snakemake.params
cells = [
    (
        {k: v for k, v in vars(EngineAudit.parse(key)).items() if k != "count"},  # count: the scores' rows
        pd.read_parquet(scores),
        pd.read_parquet(privacy),
    )
    for key, scores, privacy in zip(p.audits, snakemake.input.scores, snakemake.input.privacy, strict=True)
]
table = engine_audit_table(cells, p.guesses, p.confidence)  # raises if a bound exceeds its accounted ε
write_csv_atomic(table, snakemake.output[0])
for row in table.itertuples():
    log.info(f"{row.dp} seed {row.seed}: ε accounted {row.epsilon_accounted:g}, bound {row.epsilon_lower_bound:.3f}")
