from fedhet import setup_logging
from fedhet.analysis.tables import runtime_table
from fedhet.io import write_csv_atomic

setup_logging(snakemake.log[0])
write_csv_atomic(runtime_table(snakemake.input), snakemake.output[0])
