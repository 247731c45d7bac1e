from pathlib import Path

from fedhet import setup_logging
from fedhet.data.datasets import dataset_spec
from fedhet.data.sources import fetch_file, resolve_mirror

log = setup_logging(snakemake.log[0])
out = Path(snakemake.output[0])
mirror = resolve_mirror(snakemake.params.mirror)
log.info(f"fetching {out.name} from {mirror or 'the official source'}")
fetch_file(dataset_spec(snakemake.wildcards.dataset), out.name, out, mirror)
