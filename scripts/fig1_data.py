from fedhet import setup_logging
from fedhet.analysis.figures import fig1_data
from fedhet.analysis.tables import read_cells
from fedhet.io import write_csv_atomic

setup_logging(snakemake.log[0])
write_csv_atomic(fig1_data(read_cells(snakemake.input), snakemake.params.reference), snakemake.output[0])
