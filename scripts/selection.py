from fedhet import setup_logging
from fedhet.analysis.tables import read_cells, selection_table
from fedhet.io import write_csv_atomic

log = setup_logging(snakemake.log[0])
table = selection_table(read_cells(snakemake.input))
write_csv_atomic(table, snakemake.output[0])
for row in table[table["chosen"]].itertuples():
    log.info(f"{row.family}: {row.algorithm} ({row.metric} {row.mean:.4f} on validation)")
