from pathlib import Path

from fedhet import setup_logging
from fedhet.data.datasets import load_source
from fedhet.data.partition import write_external
from fedhet.data.sources import binary_labels

log = setup_logging(snakemake.log[0])
data = snakemake.params.data
source = load_source(data["dataset"], Path(snakemake.input[0]).parent)
binary = binary_labels(source.external_labels, data["abnormal_classes"])
write_external(snakemake.output[0], source.external_images, source.external_labels, binary)
log.info(f"external test set: {len(binary)} images, {int(binary.sum())} abnormal")
