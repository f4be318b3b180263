# Entry point: `snakemake --cores all` runs the embedded default grid (config/config.yaml);
# `--configfile config/<other>.yaml` layers another grid on top. Rules live in workflow/rules/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/pretrain.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
