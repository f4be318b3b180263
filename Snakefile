# Entry point: `snakemake --cores all` runs the embedded default grid (config/config.yaml);
# `--configfile config/<other>.yaml` layers another grid on top. Rules live in workflow/rules/,
# each a thin call of the `ticketbench` CLI.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/prac.smk"
include: "workflow/rules/imp.smk"
include: "workflow/rules/jackpot.smk"
include: "workflow/rules/structure.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


# Every run is a target, not only the report: a fresh clone holds the committed report, and asking for it
# alone would let Snakemake stop there without running a single job.
rule all:
    default_target: True
    input:
        get_final_output(),
        f"{RESULTS}/report/README.md",
