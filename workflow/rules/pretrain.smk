rule pretrain:
    output:
        metrics=cell("pretrain", "metrics.json"),
        model=cell("pretrain", "model.safetensors"),
        final=cell("pretrain", "final.safetensors"),
        dynamics=cell("pretrain", "dynamics.safetensors"),
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        configs=config_flags(),
        recipe=recipe("train"),
        root=data_root,
        overrides=recipe_flags("data", "train"),
    log:
        "logs/pretrain/{dataset}/{backbone}/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/{dataset}/{backbone}/seed{seed}.tsv"
    threads: THREADS
    resources:
        **resources_of("pretrain"),
    conda:
        "../../environment.yml"
    shell:
        "ticketbench pretrain {params.configs:q} --dataset {wildcards.dataset:q} --backbone {wildcards.backbone:q} "
        "--seed {wildcards.seed:q} {params.root:q} {params.overrides:q} --threads {threads:q} --out {params.out:q} "
        "--no-progress --overwrite > {log:q} 2>&1"


# A paper whose dense recipe differs from the grid's base one trains its own dense run in a folder of the base run's
# (papers with equal recipes share it; docs/pipeline.md "The pipeline").
use rule pretrain as pretrain_paper with:
    output:
        metrics=cell("pretrain", "{paper}", "metrics.json"),
        model=cell("pretrain", "{paper}", "model.safetensors"),
        final=cell("pretrain", "{paper}", "final.safetensors"),
        dynamics=cell("pretrain", "{paper}", "dynamics.safetensors"),
    params:
        recipe=recipe("train", paper=lambda wc: wc.paper),
        overrides=recipe_flags("data", "train", paper=lambda wc: wc.paper),
    log:
        "logs/pretrain/{dataset}/{backbone}/seed{seed}/{paper}.log",
    benchmark:
        "benchmarks/pretrain/{dataset}/{backbone}/seed{seed}/{paper}.tsv"
