# fedhet: data heterogeneity and federated learning across hospitals.
# Run: snakemake --cores 8 all        One figure: snakemake --cores 2 results/fashion_mnist/fig1.svg
from snakemake.utils import min_version, validate

from fedhet.config import replace_stated_keys, validate_config

min_version("9.0")


configfile: "config/config.yaml"


# --configfile files merge into config/config.yaml key by key, except `experiments`: a file
# that states it states all of them (README, "Your own configuration").
replace_stated_keys(config, workflow.config_settings.configfiles)


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
