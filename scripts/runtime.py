from fedhet import setup_logging
from fedhet.tables import runtime_table, write_csv_atomic

setup_logging(snakemake.log[0])
write_csv_atomic(runtime_table(snakemake.input), snakemake.output[0])
