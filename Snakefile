# fedhet: data heterogeneity and federated learning across hospitals.
# Run: snakemake --cores 8 all        One figure: snakemake --cores 2 results/fig1.svg
from snakemake.utils import min_version, validate

from fedhet.config import validate_config

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


# fedhet's validator first: its message names the offending key plainly.
validate_config(config)
validate(config, "config/schema.yaml", set_default=True)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/report.smk"
include: "rules/experiments.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
