"""The generated results blocks and checked prose numbers of README.md and the documentation
pages (docs/**/*.md) equal the committed files.

docs/readme_tables.py renders each block from docs/results/ and benchmarks/results/; a block
that differs means someone edited a page's numbers by hand or the files changed without
`python docs/readme_tables.py`. Fast, no data, no torch.
"""

from __future__ import annotations

import importlib.util
import re
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
    for page in readme_tables.pages(REPO):
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / page, tmp_path / page)
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
    assert "| fixed size | 10% |" in _page_with(root, "trends").read_text()
    assert readme_tables.check(root) == []


def test_check_fails_when_a_prose_number_changes(tmp_path):
    root = _copy(tmp_path)
    path = root / readme_tables.RESULTS / "privacy_fig6.csv"
    df = pd.read_csv(path)
    df.loc[df["private"] & df["hospital"].str.startswith("small"), "sigma"] *= 1.1
    df.to_csv(path, index=False)
    problems = readme_tables.check(root)
    assert [p.split(":")[0] for p in problems] == ["prose prose_sigma"], problems


def _page_with(root: Path, name: str) -> Path:
    """The one file under ``root`` that holds block ``name``."""
    marker = readme_tables._marker(name)
    (page,) = [root / p for p in readme_tables.pages(root) if marker in (root / p).read_text()]
    return page


def test_blocks_live_in_readme_and_docs_pages():
    found = readme_tables.all_blocks({p: (REPO / p).read_text() for p in readme_tables.pages(REPO)})
    assert set(found) == set(readme_tables.BLOCKS)
    where = {str(path) for path, _ in found.values()}
    assert where and all(w == "README.md" or w.startswith("docs/") for w in where), where
    # a block inside docs/results/ links to the committed files next to it, not from the root
    path, body = found["privacy_spent"]
    assert str(path).startswith("docs/results/") and "](privacy_fig6.csv)" in body


def test_missing_or_unknown_block_is_reported(tmp_path):
    root = _copy(tmp_path)
    page = _page_with(root, "cost")
    text = page.read_text()
    marker = "<!-- generated: cost (python docs/readme_tables.py) -->"
    page.write_text(text.replace(marker, "<!-- cost table -->"))
    assert any(p.startswith("block cost: none of README.md") for p in readme_tables.check(root))
    page.write_text(text.replace(marker, marker.replace("cost", "fig99")))
    with pytest.raises(ValueError, match="fig99"):
        readme_tables.check(root)


def test_block_in_two_files_is_an_error(tmp_path):
    root = _copy(tmp_path)
    page = _page_with(root, "cost")
    marker = readme_tables._marker("cost")
    block = marker + page.read_text().split(marker)[1].split(readme_tables.END)[0] + readme_tables.END
    readme = root / "README.md"
    readme.write_text(readme.read_text() + "\n" + block + "\n")
    with pytest.raises(ValueError, match=r"'cost' appears in both"):
        readme_tables.check(root)


def test_prose_phrase_may_live_in_any_page(tmp_path):
    root = _copy(tmp_path)
    phrase = " ".join(readme_tables.prose_sigma(root).split())
    anywhere = re.compile(r"\s+".join(re.escape(word) for word in phrase.split()))  # across line breaks
    (holder,) = [root / p for p in readme_tables.pages(root) if anywhere.search((root / p).read_text())]
    holder.write_text(anywhere.sub("", holder.read_text()))
    assert [p.split(":")[0] for p in readme_tables.check(root)] == ["prose prose_sigma"]
    (root / "docs" / "elsewhere.md").write_text(phrase + "\n")
    assert readme_tables.check(root) == []
