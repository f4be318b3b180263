rule imp:
    input:
        pretrain=dense(imp_paper),
        reference=get_imp_reference,
        subsets=get_transfer_source,
    output:
        metrics=cell("imp", "{variant}", "metrics.json"),
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        pretrain=folder_of("pretrain"),
        configs=config_flags(),
        recipe=recipe("imp", "train", paper=imp_paper, run=imp_changes),
        root=data_root,
        overrides=recipe_flags("imp", "train", paper=imp_paper, run=imp_changes),
        extra=imp_flags,
    log:
        "logs/imp/{dataset}/{backbone}/seed{seed}/{variant}.log",
    benchmark:
        "benchmarks/imp/{dataset}/{backbone}/seed{seed}/{variant}.tsv"
    threads: THREADS
    resources:
        **resources_of("imp"),
    conda:
        "../../environment.yml"
    shell:
        "ticketbench imp {params.configs:q} --pretrain {params.pretrain:q} {params.root:q} {params.overrides:q} "
        "{params.extra:q} --threads {threads:q} --out {params.out:q} --no-progress --overwrite > {log:q} 2>&1"


# The instability of an IMP run's tickets (experiments.instability): it retrains them as that run did, from its dense
# run and with its recipe.
rule instability:
    input:
        pretrain=dense(imp_paper),
        reference=cell("imp", "{variant}", "metrics.json"),
    output:
        metrics=cell("instability", "{variant}", "metrics.json"),
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        pretrain=folder_of("pretrain"),
        reference=folder_of("reference"),
        configs=config_flags(),
        recipe=recipe("instability", "train", paper=imp_paper),
        root=data_root,
        overrides=recipe_flags("train", paper=imp_paper),
    log:
        "logs/instability/{dataset}/{backbone}/seed{seed}/{variant}.log",
    benchmark:
        "benchmarks/instability/{dataset}/{backbone}/seed{seed}/{variant}.tsv"
    threads: THREADS
    resources:
        **resources_of("instability"),
    conda:
        "../../environment.yml"
    shell:
        "ticketbench instability {params.configs:q} --pretrain {params.pretrain:q} {params.root:q} "
        "{params.overrides:q} --reference {params.reference:q} --threads {threads:q} --out {params.out:q} "
        "--no-progress --overwrite > {log:q} 2>&1"
