# Helpers shared by the rules: config slices, cell expansion, and input functions.
import fedhet.config as fc
from fedhet.data import dataset_spec

CORE_CELLS = fc.core_cells(config)
RESULTS = "results"


wildcard_constraints:
    scenario=r"[a-z][a-z0-9_.x\-]*r[0-9.e\-]+",
    mode="federated|local|large_only",
    dp=r"[A-Za-z0-9_.\-]+",
    seed=r"\d+",
    dataset=r"[a-z_]+",


def raw_files(wildcards=None):
    spec = dataset_spec(config["data"]["dataset"])
    return [f"{RESULTS}/data/{spec.name}/raw/{name}" for name in spec.files]


def external_file():
    return f"{RESULTS}/data/{config['data']['dataset']}/external.parquet"


def cell_metrics(cells):
    return [f"{cell.directory(RESULTS)}/metrics.parquet" for cell in cells]


def cell_privacy(cells):
    return [f"{cell.directory(RESULTS)}/privacy.parquet" for cell in cells]


def cell_rounds(cells):
    return [f"{cell.directory(RESULTS)}/rounds.parquet" for cell in cells]


def cell_benchmarks(cells):
    return [
        f"{RESULTS}/benchmarks/train_cell/{c.scenario}/{c.mode}/{c.dp}/seed{c.seed}.tsv"
        for c in cells
    ]


def partition_manifests(cells):
    return sorted({f"{cell.partitions(RESULTS)}" for cell in cells})


def all_outputs():
    return [
        f"{RESULTS}/metrics.parquet",
        *[
            f"{RESULTS}/tables/table{i}.{ext}"
            for i in (1, 2, 3)
            for ext in ("csv", "md")
        ],
        f"{RESULTS}/fig1.svg",
        f"{RESULTS}/tables/runtime.csv",
        f"{RESULTS}/tables/budget.csv",
        f"{RESULTS}/tables/privacy.csv",
    ]
