import re

import pytest

from conftest import REPO
from fedhet.privacy.audit import AuditCell, EngineAudit
from fedhet.workflow.config import Cell
from fedhet.workflow.keys import CELL, LAYOUTS, PARTITIONS
from fedhet.workflow.specs import CanarySpec

VALUES = {
    "scenario": "large1x300r0.5-small2x60r0.1",
    "mode": "federated",
    "algorithm": "fedprox-mu0.01",
    "dp": "all-eps1-delta1e-05-clip1",
    "optim": "lr0.03",
    "seed": "2-public",
    "canaries": "small_1-m500",
    "hospital": "small_1",
    "m": "500",
    "beta": "0.05",
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_layout_formats_and_parses_its_keys(name):
    layout = LAYOUTS[name]
    values = {field: VALUES[field] for field in layout.fields}
    key = layout.key(**values)
    assert layout.parse(key) == values
    assert layout.path("results/x", **values) == f"results/x/{layout.directory}/{key}"
    assert layout.pattern("R").format(**values) == f"R/{layout.directory}/{key}"
    with pytest.raises(ValueError, match=f"{layout.name} key 'a/b': expected"):
        layout.parse("a/b")


@pytest.mark.parametrize("holdout", ["test", "validation", "public"])
def test_key_types_round_trip_through_the_layouts(holdout):
    cell = Cell(VALUES["scenario"], "federated", 3, VALUES["dp"], "scaffold-eta1", holdout, "lr0.1")
    assert Cell.parse(cell.key()) == cell
    assert cell.directory("R") == CELL.path("R", **cell.fields())
    assert cell.partitions("R") == PARTITIONS.path("R", scenario=cell.scenario, seed=cell.fields()["seed"])
    audit = AuditCell(Cell(VALUES["scenario"], "local", 1, VALUES["dp"], optim="lr0.01"), CanarySpec("small_1", 500))
    assert AuditCell.parse(audit.key()) == audit
    engine = EngineAudit(VALUES["scenario"], "small_1", VALUES["dp"], "lr0.01", 4000, 2)
    assert EngineAudit.parse(engine.key()) == engine and engine.directory("R") == f"R/audit/{engine.key()}"


def test_no_rule_retypes_a_path_of_a_layout():
    """Cells, audits and partitions take their paths from fedhet.workflow.keys: a rule spells none."""
    spelled = re.compile(r"/(cells|audit|partitions)/\{\{")
    for path in sorted((REPO / "rules").glob("*.smk")) + [REPO / "Snakefile"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not spelled.search(line), f"{path.name}:{number}: {line.strip()}"
