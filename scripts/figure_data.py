from fedhet import setup_logging
from fedhet.figures import figure_data
from fedhet.tables import read_cells, write_csv_atomic

setup_logging(snakemake.log[0])
data = figure_data(read_cells(snakemake.input), int(snakemake.wildcards.n))
write_csv_atomic(data, snakemake.output[0])
