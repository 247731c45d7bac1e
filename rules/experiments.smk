# Experiments beyond the core grid: Figures 2–13 (fedhet.workflow.figure_specs.FIGURES), the sweeps' trend
# tests, the grid's cost, the hyperparameter selection tables and the audits' tables.


rule figure_data:
    input:
        unpack(figure_inputs),
    output:
        f"{RESULTS}/figures/fig{{n}}.csv",
    log:
        f"{RESULTS}/logs/figure_data/fig{{n}}.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    params:
        variants=figure_variants,
    script:
        "../scripts/figure_data.py"


rule figure:
    input:
        f"{RESULTS}/figures/fig{{n}}.csv",
    output:
        report(
            f"{RESULTS}/fig{{n}}.svg",
            caption="../report/figure.rst",
            category="Figures",
        ),
    log:
        f"{RESULTS}/logs/figure/fig{{n}}.log",
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
        "../scripts/figure.py"


rule figure_privacy:
    """The privacy rows of one figure's cells: a run that builds only some figures can still
    show (and check) what every private hospital in them spent."""
    input:
        unpack(figure_privacy_inputs),
    output:
        report(
            f"{RESULTS}/tables/privacy_fig{{n}}.csv",
            caption="../report/privacy_figure.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/figure_privacy/fig{{n}}.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    params:
        variants=figure_variants,
    script:
        "../scripts/privacy.py"


rule fairness:
    """A remedy figure's fairness view: the worst small hospital, the small hospitals' spread and
    the large hospital, each paired by seed with FedAvg (fedhet.analysis.fairness)."""
    input:
        fairness_inputs,
    output:
        report(
            f"{RESULTS}/tables/fairness_fig{{n}}.csv",
            caption="../report/fairness.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/fairness/fig{{n}}.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    script:
        "../scripts/fairness.py"


rule participation:
    """Per cell of a figure, how often each hospital type was drawn into a round and what its
    hospitals got (fedhet.analysis.participation)."""
    input:
        unpack(participation_inputs),
    output:
        report(
            f"{RESULTS}/tables/participation_fig{{n}}.csv",
            caption="../report/participation.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/participation/fig{{n}}.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    script:
        "../scripts/participation.py"


rule trends:
    input:
        cell_metrics(SWEEP_CELLS),
    output:
        csv=report(
            f"{RESULTS}/tables/trends.csv",
            caption="../report/trends.rst",
            category="Tables",
        ),
        md=f"{RESULTS}/tables/trends.md",
        points=f"{RESULTS}/tables/trend_points.csv",
        contrast=report(
            f"{RESULTS}/tables/count_vs_size.csv",
            caption="../report/count_vs_size.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/trends.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    params:
        sweeps=sweeps_param(),
    script:
        "../scripts/trends.py"


rule cost:
    input:
        f"{RESULTS}/tables/runtime.csv",
    output:
        report(
            f"{RESULTS}/tables/cost.csv",
            caption="../report/cost.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/cost.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    params:
        experiments=experiment_cells_param(),
        cores=[2, 8, 64],
    script:
        "../scripts/cost.py"


rule selection:
    input:
        cell_metrics(SELECTION_CELLS),
    output:
        report(
            f"{RESULTS}/tables/selection.csv",
            caption="../report/selection.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/selection.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    script:
        "../scripts/selection.py"


rule dp_selection:
    """Learning rate and C per DP setting, chosen on public proxies or on private validation
    splits from the scores the small hospitals release (fedhet.analysis.tuning)."""
    input:
        cell_metrics(TUNING_CELLS),
    output:
        report(
            f"{RESULTS}/tables/dp_selection.csv",
            caption="../report/dp_selection.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/dp_selection.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    params:
        score_noise=config["tuning"]["score_noise"],
    script:
        "../scripts/dp_selection.py"


rule tuning_charge:
    """What choosing lr and C on private validation splits costs each private hospital, added
    to its final run's ε (fedhet.analysis.tuning.tuning_charges)."""
    input:
        candidates=cell_privacy([c for c in TUNING_CELLS if c.holdout == "validation"]),
        finals=cell_privacy(CHARGED_CELLS),
    output:
        report(
            f"{RESULTS}/tables/tuning_charge.csv",
            caption="../report/tuning_charge.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/tuning_charge.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    params:
        score_noise=config["tuning"]["score_noise"],
    script:
        "../scripts/tuning_charge.py"


rule audit:
    """The audit table: per audit cell, the accounted ε of the hospital with the canaries beside
    the empirical lower bound (a bound above it fails the rule: DP or its accounting is wrong).
    """
    input:
        scores=[f"{cell.directory(RESULTS)}/scores.parquet" for cell in AUDIT_CELLS],
        privacy=[f"{cell.directory(RESULTS)}/privacy.parquet" for cell in AUDIT_CELLS],
    output:
        report(
            f"{RESULTS}/tables/audit.csv",
            caption="../report/audit.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/audit.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    params:
        guesses=config["audit"]["guesses"],
        confidence=config["audit"]["confidence"],
        delta=fa.audit_delta(config["audit"]),
    script:
        "../scripts/audit.py"


rule engine_audit_table:
    """The engine audit's table: per run, the accounted ε beside the bound from its gradient
    canaries, the design's largest reachable bound and whether the row is conclusive (a bound
    above the accounted ε fails the rule)."""
    input:
        scores=[f"{a.directory(RESULTS)}/scores.parquet" for a in ENGINE_AUDITS],
        privacy=[f"{a.directory(RESULTS)}/privacy.parquet" for a in ENGINE_AUDITS],
    output:
        report(
            f"{RESULTS}/tables/engine_audit.csv",
            caption="../report/engine_audit.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/engine_audit_table.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    params:
        audits=[a.key() for a in ENGINE_AUDITS],
        guesses=config["audit"]["engine"]["guesses"],
        confidence=config["audit"]["confidence"],
    script:
        "../scripts/engine_audit_table.py"
