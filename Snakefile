# Entry point: `snakemake --cores all` runs the embedded default grid (config/config.yaml);
# `--configfile config/<other>.yaml` layers another grid on top. Rules live in workflow/rules/,
# each a thin call of the `ticketbench` CLI.
import os

from snakemake.utils import min_version, validate

min_version("9.0")

from ticketbench.config import DEFAULT_CONFIG, check_workflow_config

# Checked before `configfile:` layers the command line's config on the file: that directive logs a line of its own,
# and a bad config must print its one error line alone. A dry run skips the data folders, so that a grid can be
# planned away from its data, and so does TICKETBENCH_CHECK_DATA=0 (make pull, which runs no training job), so that
# a colleague rebuilds a pulled grid's report without its datasets.
# The --configfile files are read again by ticketbench's own reader, which refuses duplicate keys, oversized or
# deeply nested files and alias bombs. Snakemake has already read them by then, through YTE: a file with
# `__use_yte__: true` has had its expressions evaluated as Python before this line (docs/sharing.md "Configs and data from elsewhere").
check_workflow_config(config, DEFAULT_CONFIG, replace=workflow.config_settings.replace_workflow_config,
                      data=not (workflow.output_settings.dryrun or os.environ.get("TICKETBENCH_CHECK_DATA") == "0"),
                      files=[str(f) for f in workflow.overwrite_configfiles or []])


configfile: DEFAULT_CONFIG


# Snakemake's own check of the merged config against the schema the check above enforced already (so this never
# fails with its multi-line message): it holds the workflow to the committed schema, as Snakemake workflows do.
validate(config, "workflow/schemas/config.schema.yaml")


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
