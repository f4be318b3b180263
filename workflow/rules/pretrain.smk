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
        overrides=lambda wc: override_flags(wc, "train"),
    log:
        "logs/pretrain/{dataset}/{backbone}/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/{dataset}/{backbone}/seed{seed}.tsv"
    threads: THREADS
    resources:
        gpu=GPU,
    conda:
        "../../environment.yml"
    shell:
        "ticketbench pretrain {params.configs} --dataset {wildcards.dataset} --backbone {wildcards.backbone} "
        "--seed {wildcards.seed} {params.root} {params.overrides} --threads {threads} --out {params.out} --no-progress --overwrite > {log} 2>&1"
