# fedhet: data heterogeneity and federated learning across hospitals.
# Run: snakemake --cores 8 all        One figure: snakemake --cores 2 results/fashion_mnist/fig1.svg
from snakemake.utils import min_version, validate

import sys

from fedhet.workflow.config import replace_stated_keys, validate_config
from fedhet.workflow.figure_specs import skipped_figures_text
from fedhet.analysis.plan import plan_text

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


# The size and cost of this configuration, before any job (dry runs too).
if workflow.is_main_process:
    print(plan_text(config, workflow.resource_settings.cores or 1), file=sys.stderr)
    if skipped := skipped_figures_text(config):
        print(skipped, file=sys.stderr)


rule all:
    default_target: True
    input:
        all_outputs(),
