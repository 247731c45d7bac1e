from fedhet import setup_logging
from fedhet.tables import read_cells, write_csv_atomic
from fedhet.tuning import choices_yaml, dp_selection_table

log = setup_logging(snakemake.log[0])
table = dp_selection_table(read_cells(snakemake.input), snakemake.params.score_noise)
write_csv_atomic(table, snakemake.output[0])
# What a tuned experiment states (config/config.yaml, dp_tuned and dp_tuned_public): its choices.
for holdout in table["holdout"].unique():
    log.info(f"chosen on {holdout}:\n" + choices_yaml(table, holdout))
