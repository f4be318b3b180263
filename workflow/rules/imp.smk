rule imp:
    input:
        pretrain=dense(imp_paper),
        reference=get_imp_reference,
        subsets=get_transfer_source,
    output:
        metrics=cell("imp", "{variant}", "metrics.json"),
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
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
        "ticketbench imp {params.configs} --pretrain $(dirname {input.pretrain}) {params.root} {params.overrides} {params.extra} "
        "--threads {threads} --out {params.out} --no-progress --overwrite > {log} 2>&1"
