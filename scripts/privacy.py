import pandas as pd

from fedhet import setup_logging
from fedhet.analysis.tables import check_privacy_budgets, read_cells
from fedhet.analysis.tuning import with_tuning
from fedhet.io import write_csv_atomic

log = setup_logging(snakemake.log[0])
table = read_cells(snakemake.input.cells)
check_privacy_budgets(table)  # a cell that overspent its ε fails the run here, loudly
variants = getattr(snakemake.params, "variants", None)
if variants is not None:  # one figure's rows: how each setting was tuned, and its total ε
    charges = pd.read_csv(snakemake.input.charges) if "charges" in snakemake.input.keys() else None
    table = with_tuning(table, pd.DataFrame(variants), charges)
write_csv_atomic(table, snakemake.output[0])
log.info(f"{int(table['private'].sum())} private hospital trainings, all within their ε")
