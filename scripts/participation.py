from fedhet import setup_logging
from fedhet.analysis.participation import participation_table
from fedhet.analysis.tables import read_cells
from fedhet.io import write_csv_atomic

setup_logging(snakemake.log[0])
table = participation_table(read_cells(snakemake.input.rounds), read_cells(snakemake.input.metrics))
write_csv_atomic(table, snakemake.output[0])
