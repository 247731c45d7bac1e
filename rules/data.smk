rule fetch_data:
    output:
        f"{fc.DOWNLOADS}/{{dataset}}/{{filename}}",
    log:
        f"{fc.DOWNLOADS}/logs/{{dataset}}/{{filename}}.log",
    localrule: True
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=512,
        runtime=30,
    params:
        mirror=config["data"]["mirror"],
    script:
        "../scripts/fetch_data.py"


rule external_test:
    input:
        raw_files,
    output:
        external_file(),
    log:
        f"{RESULTS}/logs/external_test.log",
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    params:
        data=config["data"],
    script:
        "../scripts/external_test.py"


rule partition:
    input:
        raw_files,
    output:
        directory(fk.PARTITIONS.pattern(RESULTS)),
    log:
        fk.PARTITIONS.log(RESULTS, "partition"),
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    params:
        data=config["data"],
    script:
        "../scripts/partition.py"


rule shared_data:
    input:
        raw_files,
    output:
        fk.SHARED.pattern(RESULTS),
    log:
        f"{RESULTS}/logs/shared_data/{{scenario}}/seed{{seed}}-beta{{beta}}.log",
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    params:
        data=config["data"],
    script:
        "../scripts/shared_data.py"


rule canaries:
    """An audit's canaries: records outside every hospital, labels flipped, each drawn in or out."""
    input:
        raw_files,
    output:
        fk.CANARIES.pattern(RESULTS),
    log:
        f"{RESULTS}/logs/canaries/{{scenario}}/seed{{seed}}-m{{m}}.log",
    conda:
        "../envs/fedhet.yaml"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    params:
        data=config["data"],
    script:
        "../scripts/canaries.py"
