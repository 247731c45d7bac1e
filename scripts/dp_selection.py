from fedhet import setup_logging
from fedhet.tables import choices_yaml, dp_selection_table, read_cells, write_csv_atomic

log = setup_logging(snakemake.log[0])
table = dp_selection_table(read_cells(snakemake.input))
write_csv_atomic(table, snakemake.output[0])
# What a tuned experiment states (config/config.yaml, dp_tuned): the chosen setting per row.
log.info("chosen on validation:\n" + choices_yaml(table))
