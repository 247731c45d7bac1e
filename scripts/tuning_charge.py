from fedhet import setup_logging
from fedhet.analysis.tables import read_cells
from fedhet.analysis.tuning import tuning_charges
from fedhet.io import write_csv_atomic

log = setup_logging(snakemake.log[0])
candidates, finals = read_cells(snakemake.input.candidates), read_cells(snakemake.input.finals)
table = tuning_charges(candidates, finals, snakemake.params.score_noise)
write_csv_atomic(table, snakemake.output[0])
for row in table.itertuples():
    spent = f"ε {row.epsilon_training:.3g} + {row.epsilon_tuning:.3g} = {row.epsilon_total:.3g}"
    log.info(f"{row.mode} {row.dp} {row.optim} seed {row.seed} {row.hospital}: {spent} over {row.candidates} runs")
