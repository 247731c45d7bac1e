import pandas as pd

from fedhet import setup_logging
from fedhet.analysis.tables import cost_table
from fedhet.io import write_csv_atomic

setup_logging(snakemake.log[0])
cost = cost_table(pd.read_csv(snakemake.input[0]), snakemake.params.experiments, snakemake.params.cores)
write_csv_atomic(cost, snakemake.output[0])
