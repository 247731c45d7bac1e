import pandas as pd

from fedhet import setup_logging
from fedhet.analysis.figures import figure_data
from fedhet.analysis.tables import read_cells
from fedhet.io import write_csv_atomic
from fedhet.workflow.figure_specs import PRIVACY_FIGURES

setup_logging(snakemake.log[0])
number = int(snakemake.wildcards.n)
context = {}
if number in PRIVACY_FIGURES:
    context["variants"] = pd.DataFrame(snakemake.params.variants)
    if "charges" in snakemake.input.keys():
        context["charges"] = pd.read_csv(snakemake.input.charges)
write_csv_atomic(figure_data(read_cells(snakemake.input.cells), number, **context), snakemake.output[0])
