rule train_cell:
    input:
        unpack(shared_input),
        partitions=fk.PARTITIONS.pattern(RESULTS),
        external=external_file(),
    output:
        metrics=fk.CELL.pattern(RESULTS, "metrics.parquet"),
        rounds=fk.CELL.pattern(RESULTS, "rounds.parquet"),
        privacy=fk.CELL.pattern(RESULTS, "privacy.parquet"),
        # the machine and library build behind the numbers (fedhet.analysis.provenance), written by run_cell
        provenance=fk.CELL.pattern(RESULTS, "provenance.json"),
    log:
        fk.CELL.log(RESULTS, "train_cell"),
    benchmark:
        fk.CELL.benchmark(RESULTS, "train_cell")
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=4096,
        runtime=30,
        # A GPU slot per cell with device: cuda; `--resources gpu=N` packs N cells per GPU.
        gpu=gpu_slots(),
    params:
        # Only the slices that change training: a figure or table edit never retrains.
        model=config["model"],
        training=training_params(),
        evaluation=evaluation_params,
        # How DP-SGD runs matters to DP cells only: a new clipping engine leaves nodp cells be.
        privacy=privacy_params,
        # Not `device`: like threads, it says where a cell runs, not what it computes (beyond
        # float rounding), so moving a finished grid to a GPU does not retrain it.
    script:
        "../scripts/train_cell.py"


rule audit_cell:
    """A training cell with canaries planted at one hospital (fedhet.privacy.audit): its own path below
    audit/, so it never stands in for the cell without them."""
    input:
        partitions=fk.PARTITIONS.pattern(RESULTS),
        canaries=canary_file,
    output:
        scores=fk.AUDIT_CELL.pattern(RESULTS, "scores.parquet"),
        metrics=fk.AUDIT_CELL.pattern(RESULTS, "metrics.parquet"),
        rounds=fk.AUDIT_CELL.pattern(RESULTS, "rounds.parquet"),
        privacy=fk.AUDIT_CELL.pattern(RESULTS, "privacy.parquet"),
        provenance=fk.AUDIT_CELL.pattern(RESULTS, "provenance.json"),
    log:
        fk.AUDIT_CELL.log(RESULTS, "audit_cell"),
    benchmark:
        fk.AUDIT_CELL.benchmark(RESULTS, "audit_cell")
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=4096,
        runtime=30,
        gpu=gpu_slots(),
    params:
        model=config["model"],
        training=training_params(),
        evaluation={**config["evaluation"], "every_round": False},
        privacy=privacy_params,
    script:
        "../scripts/audit_cell.py"


rule engine_audit:
    """White-box audit of the DP-SGD engine (fedhet.training.gradient_audit): the audited hospital trains
    alone with Dirac gradient canaries, scored from every released gradient."""
    input:
        partitions=fk.PARTITIONS.pattern(RESULTS),
    output:
        scores=fk.ENGINE_AUDIT.pattern(RESULTS, "scores.parquet"),
        privacy=fk.ENGINE_AUDIT.pattern(RESULTS, "privacy.parquet"),
    log:
        fk.ENGINE_AUDIT.log(RESULTS, "engine_audit"),
    benchmark:
        fk.ENGINE_AUDIT.benchmark(RESULTS, "engine_audit")
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=30,
    params:
        model=config["model"],
        training=training_params(),
        privacy=config["privacy"],
    script:
        "../scripts/engine_audit.py"
