import pandas as pd

from fedhet import setup_logging
from fedhet.figure_specs import PRIVACY_FIGURES
from fedhet.figures import figure_data
from fedhet.tables import read_cells, write_csv_atomic

setup_logging(snakemake.log[0])
number = int(snakemake.wildcards.n)
context = {}
if number in PRIVACY_FIGURES:
    context["variants"] = pd.DataFrame(snakemake.params.variants)
    if "charges" in snakemake.input.keys():
        context["charges"] = pd.read_csv(snakemake.input.charges)
write_csv_atomic(figure_data(read_cells(snakemake.input.cells), number, **context), snakemake.output[0])
