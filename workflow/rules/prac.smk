rule prac:
    input:
        pretrain=dense("prac"),
    output:
        metrics=cell("prac", "metrics.json"),
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        pretrain=folder_of("pretrain"),
        configs=config_flags(),
        recipe=recipe("imp", "prac", "train", paper="prac"),
        root=data_root,
        overrides=recipe_flags("imp", "prac", "train", paper="prac"),
    log:
        "logs/prac/{dataset}/{backbone}/seed{seed}.log",
    benchmark:
        "benchmarks/prac/{dataset}/{backbone}/seed{seed}.tsv"
    threads: THREADS
    resources:
        **resources_of("prac"),
    conda:
        "../../environment.yml"
    shell:
        "ticketbench prac {params.configs:q} --pretrain {params.pretrain:q} {params.root:q} {params.overrides:q} "
        "--threads {threads:q} --out {params.out:q} --no-progress --overwrite > {log:q} 2>&1"


rule prac_savings:
    input:
        full=cell("imp", "full", "metrics.json"),
        prac=cell("prac", "metrics.json"),
    output:
        cell("prac", "savings.json"),
    params:
        full=folder_of("full"),
        prac=folder_of("prac"),
    log:
        "logs/prac/{dataset}/{backbone}/seed{seed}.savings.log",
    benchmark:
        "benchmarks/prac/{dataset}/{backbone}/seed{seed}.savings.tsv"
    conda:
        "../../environment.yml"
    shell:
        "ticketbench prac-savings --full {params.full:q} --prac {params.prac:q} --out {output:q} > {log:q} 2>&1"


# PrAC-IMP with one setting changed (experiments.prac_ablations) or under one of PrAC's LT settings
# (experiments.prac_settings, with its own recipe and dense run), in a folder of the PrAC run of the cell.
use rule prac as prac_ablation with:
    input:
        pretrain=dense(prac_paper),
    output:
        metrics=cell("prac", "{ablation}", "metrics.json"),
    params:
        recipe=recipe("imp", "prac", "train", paper=prac_paper, run=folder_changes("prac", "ablation")),
        overrides=recipe_flags("imp", "prac", "train", paper=prac_paper, run=folder_changes("prac", "ablation")),
    log:
        "logs/prac/{dataset}/{backbone}/seed{seed}/{ablation}.log",
    benchmark:
        "benchmarks/prac/{dataset}/{backbone}/seed{seed}/{ablation}.tsv"
