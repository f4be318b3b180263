rule structure:
    input:
        pretrain=dense("structure_lth"),
        imp=get_structure_imp,
        transfer=get_structure_transfer,
    output:
        metrics=cell("structure", "{method}", "metrics.json"),
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        pretrain=folder_of("pretrain"),
        imp=folder_of("imp"),
        configs=config_flags(),
        # an ablation folder (experiments.structure_ablations) names its method and what it changes
        method=lambda wc: structure_run(wc.method)[0],
        recipe=recipe("structure", "imp", "train", paper="structure_lth", run=STRUCTURE_ABLATION),
        root=data_root,
        overrides=structure_overrides,
    log:
        "logs/structure/{dataset}/{backbone}/seed{seed}/{method}.log",
    benchmark:
        "benchmarks/structure/{dataset}/{backbone}/seed{seed}/{method}.tsv"
    threads: THREADS
    resources:
        **resources_of("structure"),
    conda:
        "../../environment.yml"
    shell:
        "ticketbench structure {params.configs:q} --pretrain {params.pretrain:q} {params.root:q} {params.overrides:q} "
        "--imp {params.imp:q} --method {params.method:q} --threads {threads:q} --out {params.out:q} --no-progress "
        "--overwrite > {log:q} 2>&1"


rule timing:
    input:
        pretrain=dense("structure_lth"),
        imp=cell("imp", STRUCTURE_IMP, "metrics.json"),
        refill=cell("structure", "refill", "metrics.json"),
        regroup=cell("structure", "regroup", "metrics.json"),
    output:
        cell("structure", "timing", "timing.json"),
    params:
        out=lambda wc, output: os.path.dirname(output[0]),
        pretrain=folder_of("pretrain"),
        imp=folder_of("imp"),
        refill=folder_of("refill"),
        regroup=folder_of("regroup"),
        configs=config_flags(),
        recipe=recipe("structure", paper="structure_lth"),
        overrides=recipe_flags("structure", paper="structure_lth"),
    log:
        "logs/structure/{dataset}/{backbone}/seed{seed}/timing.log",
    benchmark:
        "benchmarks/structure/{dataset}/{backbone}/seed{seed}/timing.tsv"
    threads: THREADS
    # Timed on the job's device (auto): asking for the training jobs' GPU makes these GPU speedups on a cluster, and
    # config cluster.rules.timing.exclusive asks for a whole node (a neighbour's load would be in the numbers).
    resources:
        **resources_of("timing"),
    conda:
        "../../environment.yml"
    shell:
        "ticketbench timing {params.configs:q} --pretrain {params.pretrain:q} {params.overrides:q} --imp {params.imp:q} "
        "--refill {params.refill:q} --regroup {params.regroup:q} --threads {threads:q} --out {params.out:q} "
        "--overwrite > {log:q} 2>&1"
