"""The README's generated results blocks and checked prose numbers equal the committed files.

docs/readme_tables.py renders each block from docs/results/ and benchmarks/results/; a block
that differs means someone edited the README's numbers by hand or the files changed without
`python docs/readme_tables.py`. Fast, no data, no torch.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent


def _load():
    path = REPO / "docs" / "readme_tables.py"
    spec = importlib.util.spec_from_file_location("readme_tables", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("readme_tables", module)
    spec.loader.exec_module(module)
    return module


readme_tables = _load()


@pytest.fixture(scope="module")
def repo_problems() -> list[str]:
    return readme_tables.check(REPO)


@pytest.mark.parametrize("name", list(readme_tables.BLOCKS))
def test_generated_block_matches_files(name, repo_problems):
    problems = [p for p in repo_problems if p.startswith((f"block {name}:", f"block {name} "))]
    assert not problems, "\n".join(problems) + "\n\nregenerate with: python docs/readme_tables.py"


def test_prose_numbers_match_files(repo_problems):
    problems = [p for p in repo_problems if p.startswith("prose ")]
    assert not problems, "\n".join(problems)


def _copy(tmp_path: Path) -> Path:
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    for sub in (readme_tables.RESULTS, readme_tables.BENCHMARKS):
        for f in (REPO / sub).rglob("*"):
            if f.suffix in (".csv", ".json"):
                target = tmp_path / sub / f.relative_to(REPO / sub)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, target)
    return tmp_path


def test_check_fails_when_a_file_value_changes(tmp_path):
    root = _copy(tmp_path)
    assert readme_tables.check(root) == []
    path = root / readme_tables.RESULTS / "trends.csv"
    df = pd.read_csv(path)
    row = (df["experiment"] == "fixed_size") & (df["curve"] == "large hospital") & (df["metric"] == "recall")
    df.loc[row & (df["small.abnormal_ratio"] == 0.1), "slope_per_10pp"] = 0.0095
    df.to_csv(path, index=False)
    problems = readme_tables.check(root)
    assert len(problems) == 1 and problems[0].startswith("block trends differs"), problems
    assert "+0.0085" in problems[0] and "+0.0095" in problems[0]  # the diff shows old and new
    assert readme_tables.main(["--check", "--root", str(root)]) == 1
    assert readme_tables.main(["--root", str(root)]) == 0  # regenerating repairs it
    assert "| fixed size | 10% |" in (root / "README.md").read_text()
    assert readme_tables.check(root) == []


def test_check_fails_when_a_prose_number_changes(tmp_path):
    root = _copy(tmp_path)
    path = root / readme_tables.RESULTS / "privacy_fig6.csv"
    df = pd.read_csv(path)
    df.loc[df["private"] & df["hospital"].str.startswith("small"), "sigma"] *= 1.1
    df.to_csv(path, index=False)
    problems = readme_tables.check(root)
    assert [p.split(":")[0] for p in problems] == ["prose prose_sigma"], problems


def test_missing_or_unknown_block_is_reported(tmp_path):
    root = _copy(tmp_path)
    readme = root / "README.md"
    text = readme.read_text()
    marker = "<!-- generated: cost (python docs/readme_tables.py) -->"
    readme.write_text(text.replace(marker, "<!-- cost table -->"))
    assert any(p.startswith("block cost: README.md has no") for p in readme_tables.check(root))
    readme.write_text(text.replace(marker, marker.replace("cost", "fig99")))
    with pytest.raises(ValueError, match="fig99"):
        readme_tables.check(root)
