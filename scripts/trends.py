from fedhet import setup_logging
from fedhet.analysis.sweeps import count_vs_size, trend_points, trends_from_points
from fedhet.analysis.tables import read_cells, trends_markdown
from fedhet.io import write_csv_atomic, write_text_atomic

log = setup_logging(snakemake.log[0])
metrics = read_cells(snakemake.input)
sweeps = snakemake.params.sweeps
points = trend_points(metrics, sweeps)
# At full precision: trends.csv is a pure function of this file (fedhet.analysis.sweeps.trends_from_points).
write_text_atomic(points.to_csv(index=False), snakemake.output.points)
trends = trends_from_points(points)
write_csv_atomic(trends, snakemake.output.csv)
write_text_atomic(trends_markdown(trends), snakemake.output.md)
write_csv_atomic(count_vs_size(metrics, sweeps), snakemake.output.contrast)
log.info(f"{len(trends)} curves tested; {(trends['verdict'] != 'no clear trend').sum()} with a trend")
