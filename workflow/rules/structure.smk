rule structure:
    input:
        pretrain=dense("structure_lth"),
        imp=get_structure_imp,
        transfer=get_structure_transfer,
    output:
        metrics=cell("structure", "{method}", "metrics.json"),
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
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
        "ticketbench structure {params.configs} --pretrain $(dirname {input.pretrain}) {params.root} {params.overrides} --imp $(dirname {input.imp}) "
        "--method {params.method} --threads {threads} --out {params.out} --no-progress --overwrite > {log} 2>&1"


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
        max_seconds=config.get("structure", {}).get("timing_max_seconds", 30.0),
        width=config.get("structure", {}).get("timing_width", 0.05),
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
        "ticketbench timing --pretrain $(dirname {input.pretrain}) --imp $(dirname {input.imp}) "
        "--refill $(dirname {input.refill}) --regroup $(dirname {input.regroup}) --threads {threads} "
        "--max-seconds {params.max_seconds} --width {params.width} "
        "--out {params.out} --overwrite > {log} 2>&1"
