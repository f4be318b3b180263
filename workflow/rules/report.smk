rule report:
    input:
        summary=f"{RESULTS}/metrics/summary.json",
        tables="config/paper_tables",
    output:
        readme=f"{RESULTS}/report/README.md",
        html=f"{RESULTS}/report/index.html",
        summary=f"{RESULTS}/report/report.json",
    params:
        results=lambda wc, input: os.path.dirname(os.path.dirname(input.summary)),
        out=lambda wc, output: os.path.dirname(output.readme),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../../environment.yml"
    shell:
        "ticketbench report --results {params.results:q} --tables {input.tables:q} --out {params.out:q} > {log:q} 2>&1"
