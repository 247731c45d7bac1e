from fedhet import setup_logging
from fedhet.analysis.tables import (
    comparison_markdown,
    comparison_table,
    external_table,
    hospitals_table,
    markdown,
    read_cells,
)
from fedhet.io import write_csv_atomic, write_text_atomic

setup_logging(snakemake.log[0])
out = snakemake.output
metrics = read_cells(snakemake.input.metrics)
table1 = hospitals_table(snakemake.input.partitions)
write_csv_atomic(table1, out.table1_csv)
write_text_atomic(markdown(table1), out.table1_md)
for name, modes in (("table2", ("federated", "local")), ("table3", ("federated", "large_only"))):
    table = comparison_table(metrics, modes, snakemake.params.reference)
    write_csv_atomic(table, out[f"{name}_csv"])
    write_text_atomic(comparison_markdown(table, modes), out[f"{name}_md"])
write_csv_atomic(external_table(metrics), out.external)
