from fedhet import setup_logging
from fedhet.tables import check_privacy_budgets, read_cells, write_csv_atomic

log = setup_logging(snakemake.log[0])
table = read_cells(snakemake.input)
check_privacy_budgets(table)  # a cell that overspent its ε fails the run here, loudly
write_csv_atomic(table, snakemake.output[0])
log.info(f"{int(table['private'].sum())} private hospital trainings, all within their ε")
