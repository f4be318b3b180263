rule evaluate:
    input:
        get_final_output(),
    output:
        summary=f"{RESULTS}/metrics/summary.json",
        table=f"{RESULTS}/metrics/summary.csv",
    params:
        results=lambda wc, output: os.path.dirname(os.path.dirname(output.summary)),
    log:
        "logs/evaluate.log",
    benchmark:
        "benchmarks/evaluate.tsv"
    conda:
        "../../environment.yml"
    shell:
        "ticketbench collect --results {params.results} --out $(dirname {output.summary}) > {log} 2>&1"
