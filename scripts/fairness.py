from fedhet import setup_logging
from fedhet.analysis.fairness import fairness_table
from fedhet.analysis.tables import read_cells
from fedhet.io import write_csv_atomic

setup_logging(snakemake.log[0])
write_csv_atomic(fairness_table(read_cells(snakemake.input)), snakemake.output[0])
