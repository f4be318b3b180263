rule evaluate:
    input:
        get_final_output(),
    output:
        summary=f"{RESULTS}/metrics/summary.json",
        table=f"{RESULTS}/metrics/summary.csv",
    params:
        results=lambda wc, output: os.path.dirname(os.path.dirname(output.summary)),
        out=lambda wc, output: os.path.dirname(output.summary),
    log:
        "logs/evaluate.log",
    benchmark:
        "benchmarks/evaluate.tsv"
    conda:
        "../../environment.yml"
    shell:
        "ticketbench collect --results {params.results:q} --out {params.out:q} > {log:q} 2>&1"
