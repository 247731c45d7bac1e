rule train_cell:
    input:
        unpack(shared_input),
        partitions=f"{RESULTS}/partitions/{{scenario}}/seed{{seed}}",
        external=external_file(),
    output:
        metrics=f"{RESULTS}/cells/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/seed{{seed}}/metrics.parquet",
        rounds=f"{RESULTS}/cells/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/seed{{seed}}/rounds.parquet",
        privacy=f"{RESULTS}/cells/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/seed{{seed}}/privacy.parquet",
        # the machine and library build behind the numbers (fedhet.provenance), written by run_cell
        provenance=f"{RESULTS}/cells/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/seed{{seed}}/provenance.json",
    log:
        f"{RESULTS}/logs/train_cell/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_cell/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/seed{{seed}}.tsv"
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
    """A training cell with canaries planted at one hospital (fedhet.audit): its own path below
    audit/, so it never stands in for the cell without them."""
    input:
        partitions=f"{RESULTS}/partitions/{{scenario}}/seed{{seed}}",
        canaries=canary_file,
    output:
        scores=f"{RESULTS}/audit/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/{{canaries}}/seed{{seed}}/scores.parquet",
        metrics=f"{RESULTS}/audit/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/{{canaries}}/seed{{seed}}/metrics.parquet",
        rounds=f"{RESULTS}/audit/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/{{canaries}}/seed{{seed}}/rounds.parquet",
        privacy=f"{RESULTS}/audit/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/{{canaries}}/seed{{seed}}/privacy.parquet",
        provenance=f"{RESULTS}/audit/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/{{canaries}}/seed{{seed}}/provenance.json",
    log:
        f"{RESULTS}/logs/audit_cell/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/{{canaries}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/audit_cell/{{scenario}}/{{mode}}/{{algorithm}}/{{dp}}/{{optim}}/{{canaries}}/seed{{seed}}.tsv"
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
    """White-box audit of the DP-SGD engine (fedhet.gradient_audit): the audited hospital trains
    alone with Dirac gradient canaries, scored from every released gradient."""
    input:
        partitions=f"{RESULTS}/partitions/{{scenario}}/seed{{seed}}",
    output:
        scores=f"{RESULTS}/audit/engine/{{scenario}}/{{hospital}}/{{dp}}/{{optim}}/m{{m}}/seed{{seed}}/scores.parquet",
        privacy=f"{RESULTS}/audit/engine/{{scenario}}/{{hospital}}/{{dp}}/{{optim}}/m{{m}}/seed{{seed}}/privacy.parquet",
    log:
        f"{RESULTS}/logs/engine_audit/{{scenario}}/{{hospital}}/{{dp}}/{{optim}}/m{{m}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/engine_audit/{{scenario}}/{{hospital}}/{{dp}}/{{optim}}/m{{m}}/seed{{seed}}.tsv"
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
