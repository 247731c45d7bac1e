from fedhet import setup_logging
from fedhet.tables import read_cells, write_parquet_atomic

log = setup_logging(snakemake.log[0])
metrics = read_cells(snakemake.input)
write_parquet_atomic(metrics, snakemake.output[0])
log.info(f"{len(snakemake.input)} cells, {len(metrics)} metric rows")
