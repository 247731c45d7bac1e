import pandas as pd

from fedhet import setup_logging
from fedhet.analysis.chart import save_svg
from fedhet.analysis.figures import figure_chart

setup_logging(snakemake.log[0])
chart = figure_chart(pd.read_csv(snakemake.input[0]), int(snakemake.wildcards.n), snakemake.params.style)
save_svg(chart, snakemake.output[0])
