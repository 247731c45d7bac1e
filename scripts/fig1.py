import pandas as pd

from fedhet import setup_logging
from fedhet.analysis.chart import save_svg
from fedhet.analysis.figures import fig1_chart

setup_logging(snakemake.log[0])
save_svg(fig1_chart(pd.read_csv(snakemake.input[0]), snakemake.params.style), snakemake.output[0])
