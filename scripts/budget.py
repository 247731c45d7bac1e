from fedhet import setup_logging
from fedhet.analysis.tables import budget_markdown, budget_table, read_cells
from fedhet.io import write_csv_atomic, write_text_atomic

setup_logging(snakemake.log[0])
budget = budget_table(read_cells(snakemake.input))
write_csv_atomic(budget, snakemake.output.csv)
write_text_atomic(budget_markdown(budget), snakemake.output.md)
