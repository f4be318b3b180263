rule jackpot:
    input:
        pretrain=dense("jackpot"),
    output:
        metrics=cell("jackpot", "{init}-s{sparsity}", "metrics.json"),
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        pretrain=folder_of("pretrain"),
        configs=config_flags(),
        recipe=recipe("jackpot", paper="jackpot"),
        root=data_root,
        overrides=recipe_flags("jackpot", paper="jackpot"),
    log:
        "logs/jackpot/{dataset}/{backbone}/seed{seed}/{init}-s{sparsity}.log",
    benchmark:
        "benchmarks/jackpot/{dataset}/{backbone}/seed{seed}/{init}-s{sparsity}.tsv"
    threads: THREADS
    resources:
        **resources_of("jackpot"),
    conda:
        "../../environment.yml"
    shell:
        "ticketbench jackpot {params.configs:q} --pretrain {params.pretrain:q} {params.root:q} {params.overrides:q} "
        "--init {wildcards.init:q} --sparsity {wildcards.sparsity:q} --threads {threads:q} --out {params.out:q} "
        "--no-progress --overwrite > {log:q} 2>&1"


# A search of another length than the recipe's, or followed by weight tuning (experiments.jackpot_searches).
use rule jackpot as jackpot_search with:
    output:
        metrics=cell("jackpot", "{init}-s{sparsity}-{search}", "metrics.json"),
    params:
        recipe=recipe("jackpot", paper="jackpot", run=folder_changes("jackpot", search_folder)),
        overrides=recipe_flags("jackpot", paper="jackpot", run=folder_changes("jackpot", search_folder)),
    log:
        "logs/jackpot/{dataset}/{backbone}/seed{seed}/{init}-s{sparsity}-{search}.log",
    benchmark:
        "benchmarks/jackpot/{dataset}/{backbone}/seed{seed}/{init}-s{sparsity}-{search}.tsv"


rule jackpot_cost:
    input:
        magnitude=cell("jackpot", "magnitude-s{sparsity}", "metrics.json"),
        random=cell("jackpot", "random-s{sparsity}", "metrics.json"),
    output:
        cell("jackpot", "cost-s{sparsity}.json"),
    params:
        magnitude=folder_of("magnitude"),
        random=folder_of("random"),
    log:
        "logs/jackpot/{dataset}/{backbone}/seed{seed}/cost-s{sparsity}.log",
    benchmark:
        "benchmarks/jackpot/{dataset}/{backbone}/seed{seed}/cost-s{sparsity}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "ticketbench jackpot-cost --magnitude {params.magnitude:q} --random {params.random:q} --out {output:q} "
        "> {log:q} 2>&1"


rule jackpot_overlap:
    input:
        pretrain=dense("jackpot"),
        jackpot=cell("jackpot", "{init}-s{sparsity}", "metrics.json"),
        imp=overlap_imp,
    output:
        # One study per search initialisation: a magnitude-initialised search starts from the magnitude mask, so
        # only the random-initialised one can show which criterion the search itself agrees with.
        table=cell("jackpot", "overlap-{init}-s{sparsity}", "overlap.csv"),
    params:
        out=lambda wc, output: os.path.dirname(output.table),
        pretrain=folder_of("pretrain"),
        jackpot=folder_of("jackpot"),
        imp=lambda wc, input: ["--imp", os.path.dirname(input.imp)] if input.imp else [],
    log:
        "logs/jackpot/{dataset}/{backbone}/seed{seed}/overlap-{init}-s{sparsity}.log",
    benchmark:
        "benchmarks/jackpot/{dataset}/{backbone}/seed{seed}/overlap-{init}-s{sparsity}.tsv"
    threads: THREADS
    # SNIP, GraSP and SynFlow scores take gradients on the device, like training.
    resources:
        **resources_of("jackpot_overlap"),
    conda:
        "../../environment.yml"
    shell:
        "ticketbench jackpot-overlap --pretrain {params.pretrain:q} --jackpot {params.jackpot:q} {params.imp:q} "
        "--threads {threads:q} --out {params.out:q} > {log:q} 2>&1"
