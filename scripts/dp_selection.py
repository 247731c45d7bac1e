from fedhet import setup_logging
from fedhet.analysis.tables import read_cells
from fedhet.analysis.tuning import choices_yaml, dp_selection_table
from fedhet.io import write_csv_atomic

log = setup_logging(snakemake.log[0])
table = dp_selection_table(read_cells(snakemake.input), snakemake.params.score_noise)
write_csv_atomic(table, snakemake.output[0])
# What a tuned experiment states (config/config.yaml, dp_tuned and dp_tuned_public): its choices.
for holdout in table["holdout"].unique():
    log.info(f"chosen on {holdout}:\n" + choices_yaml(table, holdout))
