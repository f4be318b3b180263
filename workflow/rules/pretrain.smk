rule pretrain:
    output:
        metrics=f"{RESULTS}/pretrain/{{dataset}}/{{backbone}}/seed{{seed}}/metrics.json",
        model=f"{RESULTS}/pretrain/{{dataset}}/{{backbone}}/seed{{seed}}/model.safetensors",
        final=f"{RESULTS}/pretrain/{{dataset}}/{{backbone}}/seed{{seed}}/final.safetensors",
        dynamics=f"{RESULTS}/pretrain/{{dataset}}/{{backbone}}/seed{{seed}}/dynamics.safetensors",
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        configs=config_flags(),
    log:
        "logs/pretrain/{dataset}/{backbone}/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/{dataset}/{backbone}/seed{seed}.tsv"
    threads: config.get("threads", 1)
    conda:
        "../../environment.yml"
    resources:
        gpu=config.get("gpu", 0),
    shell:
        "ticketbench pretrain {params.configs} --dataset {wildcards.dataset} "
        "--backbone {wildcards.backbone} --seed {wildcards.seed} --threads {threads} --out {params.out} --no-progress "
        "--overwrite > {log} 2>&1"
