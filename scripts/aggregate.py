from fedhet import setup_logging
from fedhet.analysis.provenance import beside, provenance_table
from fedhet.analysis.tables import read_cells
from fedhet.io import write_csv_atomic, write_parquet_atomic

log = setup_logging(snakemake.log[0])
metrics = read_cells(snakemake.input)
write_parquet_atomic(metrics, snakemake.output.metrics)
log.info(f"{len(snakemake.input)} cells, {len(metrics)} metric rows")
# Which machines and library builds computed these cells (fedhet.analysis.provenance): each cell's
# provenance.json is an output of the job that wrote its metrics, so it is there.
provenance = provenance_table([beside(p) for p in snakemake.input])
write_csv_atomic(provenance, snakemake.output.provenance)
log.info(f"provenance: {len(provenance)} machine/build combinations")
