rule fetch_data:
    output:
        f"{RESULTS}/data/{{dataset}}/raw/{{filename}}",
    params:
        mirror=config["data"]["mirror"],
    log:
        f"{RESULTS}/logs/fetch_data/{{dataset}}/{{filename}}.log",
    threads: 1
    resources:
        mem_mb=512,
        runtime=30,
    localrule: True
    script:
        "../scripts/fetch_data.py"


rule external_test:
    input:
        raw_files,
    output:
        f"{RESULTS}/data/{{dataset}}/external.parquet",
    params:
        data=config["data"],
    log:
        f"{RESULTS}/logs/external_test/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/external_test.py"


rule partition:
    input:
        raw_files,
    output:
        directory(f"{RESULTS}/partitions/{{scenario}}/seed{{seed}}"),
    params:
        data=config["data"],
    log:
        f"{RESULTS}/logs/partition/{{scenario}}/seed{{seed}}.log",
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/partition.py"
