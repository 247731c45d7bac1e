rule aggregate:
    input:
        cell_metrics(ALL_CELLS),
    output:
        metrics=f"{RESULTS}/metrics.parquet",
        provenance=report(
            f"{RESULTS}/tables/provenance.csv",
            caption="../report/provenance.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/aggregate.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/aggregate.py"


rule core_tables:
    input:
        metrics=cell_metrics(CORE_CELLS),
        partitions=partition_manifests(CORE_CELLS),
    output:
        **{
            f"table{i}_{ext}": report(
                f"{RESULTS}/tables/table{i}.{ext}",
                caption=f"../report/table{i}.rst",
                category="Tables",
            )
            for i in (1, 2, 3)
            for ext in ("csv", "md")
        },
        external=report(
            f"{RESULTS}/tables/external.csv",
            caption="../report/external.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/core_tables.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    params:
        # the study's numbers, only where this run is the study's setup
        reference=study_reference(config),
    script:
        "../scripts/core_tables.py"


rule fig1_data:
    input:
        cell_metrics(CORE_CELLS),
    output:
        f"{RESULTS}/figures/fig1.csv",
    log:
        f"{RESULTS}/logs/fig1_data.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    params:
        reference=study_reference(config),
    script:
        "../scripts/fig1_data.py"


rule fig1:
    input:
        f"{RESULTS}/figures/fig1.csv",
    output:
        report(f"{RESULTS}/fig1.svg", caption="../report/fig1.rst", category="Figures"),
    log:
        f"{RESULTS}/logs/fig1.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    params:
        style=config["figures"],
    script:
        "../scripts/fig1.py"


rule figure_link:
    """results/figN.svg, the design card's short name: a relative link to this configuration's
    figure under results/[<run>/]<dataset>/, so that no two runs or datasets overwrite each
    other's figures; building it for another configuration only moves the link."""
    input:
        f"{RESULTS}/fig{{number}}.svg",
    output:
        "results/fig{number}.svg",
    log:
        "results/logs/figure_link/fig{number}.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=256,
        runtime=1,
    params:
        target=lambda wildcards: f"{RESULTS.removeprefix('results/')}/fig{wildcards.number}.svg",
    shell:
        "ln -sfn {params.target} {output} 2> {log}"


rule runtime:
    input:
        cell_benchmarks(ALL_CELLS),
    output:
        report(
            f"{RESULTS}/tables/runtime.csv",
            caption="../report/runtime.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/runtime.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    script:
        "../scripts/runtime.py"


rule budget:
    input:
        cell_rounds(CORE_CELLS),
    output:
        csv=report(
            f"{RESULTS}/tables/budget.csv",
            caption="../report/budget.rst",
            category="Tables",
        ),
        md=f"{RESULTS}/tables/budget.md",
    log:
        f"{RESULTS}/logs/budget.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    script:
        "../scripts/budget.py"


rule privacy:
    input:
        cells=cell_privacy(ALL_CELLS),
    output:
        report(
            f"{RESULTS}/tables/privacy.csv",
            caption="../report/privacy.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/privacy.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    script:
        "../scripts/privacy.py"
