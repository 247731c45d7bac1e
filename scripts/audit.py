import pandas as pd

from fedhet import setup_logging
from fedhet.io import write_csv_atomic
from fedhet.privacy.audit import audit_table

log = setup_logging(snakemake.log[0])
p, scores, privacy = snakemake.params, snakemake.input.scores, snakemake.input.privacy
cells = [(pd.read_parquet(s), pd.read_parquet(q)) for s, q in zip(scores, privacy, strict=True)]
table = audit_table(cells, p.guesses, p.confidence, p.delta)  # raises if a bound exceeds its accounted ε
write_csv_atomic(table, snakemake.output[0])
for row in table.itertuples():
    bound = f"{row.epsilon_lower_bound:.3f}"
    log.info(f"{row.dp} seed {row.seed}: ε accounted {row.epsilon_accounted:g}, lower bound {bound}")
