"""The documentation site: its generated configuration reference, its navigation, and the
commands README.md shares with .ci/run. Fast, no data, no torch, no mkdocs (CI builds the site
with `mkdocs build --strict`)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):
    path = REPO / "docs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


gen_config = _load("gen_config")


# --- the configuration reference -------------------------------------------------------------


def test_configuration_reference_is_up_to_date():
    problems = gen_config.check(REPO)
    assert not problems, "\n".join(problems) + "\n\nregenerate with: python docs/gen_config.py"


def test_every_schema_key_has_a_description():
    missing = gen_config.undocumented(REPO)
    assert not missing, "add a `description:` to these keys of config/schema.yaml: " + ", ".join(missing)


def test_reference_resolves_definitions_and_list_items():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    names = {k.name for k in gen_config.keys(schema)}
    for name in (
        "hospitals[].abnormal_ratio",  # a list's items, through $ref hospital_group and ratio
        "experiments.<name>.dp.epsilon",  # a mapping's free keys, through $ref experiment, dp_settings
        "experiments.<name>.grid.<type>.<field>",
        "experiments.<name>.choices[].lr",
        "audit.dp.max_grad_norm",  # the same definition reached a second way
        "audit.engine.guesses",
    ):
        assert name in names, name


def _config_keys(config, prefix: tuple[str, ...], names: set[str]):
    """Schema key names of every key set in a config file."""
    if not isinstance(config, dict):
        return
    for key, value in config.items():
        path = (*prefix, str(key))
        if ".".join(path) not in names:
            path = (*prefix, gen_config.PLACEHOLDERS.get(".".join(prefix), "<key>"))
        yield ".".join(path)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                yield from _config_keys(item, (*path[:-1], path[-1] + "[]"), names)
        else:
            yield from _config_keys(value, path, names)


def test_every_key_the_shipped_configs_set_is_in_the_reference():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    names = {k.name for k in gen_config.keys(schema)}
    for path in sorted((REPO / "config").glob("*.yaml")):
        if path.name == "schema.yaml":
            continue
        used = set(_config_keys(yaml.safe_load(path.read_text()) or {}, (), names))
        assert used <= names, f"{path.name}: {sorted(used - names)}"


def test_examples_come_from_the_config_else_the_default():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    by_name = {k.name: k for k in gen_config.keys(schema)}
    assert gen_config.example(by_name["audit.seeds"], config) == "`[0, 1, 2]`"  # set in config.yaml
    assert gen_config.example(by_name["data.validation_fraction"], config) == "`0.2`"  # the default
    epsilon = by_name["experiments.<name>.dp.epsilon"]  # the first experiment that sets it
    assert gen_config.example(epsilon, config) == "`[0.1, 0.2, 0.5, 1, 2, 5, 10, .inf]`"
    assert gen_config.example(by_name["experiments.<name>.dp.clients"], config) == "—"  # neither


def test_check_fails_when_the_schema_changes(tmp_path):
    for rel in (gen_config.SCHEMA, gen_config.CONFIG, gen_config.PAGE):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    assert gen_config.check(tmp_path) == []
    schema = tmp_path / gen_config.SCHEMA
    schema.write_text(schema.read_text().replace("each hospital's stratified test share", "the test share"))
    (problem,) = gen_config.check(tmp_path)
    assert "+| `data.test_fraction` |" in problem and "the test share" in problem
    assert gen_config.main(["--check", "--root", str(tmp_path)]) == 1
    assert gen_config.main(["--root", str(tmp_path)]) == 0  # rewriting repairs it
    assert gen_config.check(tmp_path) == []
    page = (tmp_path / gen_config.PAGE).read_text()
    assert page.startswith("# Configuration") and "the test share" in page  # the prose around it is kept


# --- the site --------------------------------------------------------------------------------


def _nav_files(nav) -> list[str]:
    out = []
    for entry in nav:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            out += _nav_files(value) if isinstance(value, list) else [value]
    return out


def test_nav_lists_every_page():
    mkdocs = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    nav = _nav_files(mkdocs["nav"])
    assert len(nav) == len(set(nav))
    for page in nav:
        assert (REPO / "docs" / page).is_file(), f"mkdocs.yml nav names docs/{page}, which does not exist"
    for path in (REPO / "docs").rglob("*.md"):
        page = path.relative_to(REPO / "docs").as_posix()
        # the committed result tables (docs/results/table2.md, ...) are pages outside the nav
        assert page in nav or page.startswith("results/"), f"docs/{page} is not in mkdocs.yml's nav"


# --- README.md and .ci/run -------------------------------------------------------------------


def _bash_blocks(text: str) -> list[list[str]]:
    return [block.strip().splitlines() for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)]


def _commands(lines: list[str]) -> list[str]:
    """Shell commands of ``lines``, ``a && b`` split, leading VAR=value assignments dropped."""
    out = []
    for line in lines:
        for command in line.split("&&"):
            command = re.sub(r"^(\s*[A-Z_]+=\S+\s+)+", "", command).strip()
            if command:
                out.append(command)
    return out


def test_readme_setup_and_tests_are_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    ci_commands = _commands([x for x in lines if x and not x.startswith(("#", "set ", "cd ", "export "))])
    setup, tests = _bash_blocks(readme.split("## Set-up", 1)[1])[:2]
    assert _commands(setup) + _commands(tests) == ci_commands
    mirror = re.search(r"FEDHET_DATA_MIRROR=(\S+)", "\n".join(tests))[1]
    assert [Path(d).name for d in mirror.split(":")] == ["fashion-mnist", "medmnist"]
    assert "pip install -e '.[dev,docs]'" in setup


def test_getting_started_setup_is_the_readmes():
    readme = _bash_blocks((REPO / "README.md").read_text().split("## Set-up", 1)[1])[0]
    page = _bash_blocks((REPO / "docs" / "getting-started.md").read_text().split("## Set-up", 1)[1])[0]
    assert page == readme


# How a page came to be is not what a reader needs: it says what is.
NARRATION = re.compile(
    r"issue #\d+|\b(this|that|the|one|an earlier|a later|the next) session\b|\b(this|the first|an earlier|earlier|last"
    r"|previous) release\b|\bat the time of\b|\bnot (yet )?(been )?run yet\b",
    re.IGNORECASE,
)


def test_no_page_narrates_its_making():
    pages = [REPO / "README.md", REPO / "config" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    found = [
        f"{page.relative_to(REPO)}:{number}: {match.group(0)!r}"
        for page in pages
        if page.name != "changelog.md"  # the changelog's subject is releases
        for number, line in enumerate(page.read_text().splitlines(), 1)
        for match in [NARRATION.search(line)]
        if match
    ]
    assert not found, "\n".join(found)


REPO_PATH = re.compile(r"`((?:fedhet|scripts|rules|config|benchmarks|tests|profiles|envs|report)/[\w./-]+?)`")


def repo_paths(text: str) -> set[str]:
    """The repository paths a page names in code spans (``fedhet/io.py``, ``config/breast.yaml``),
    less globs, placeholders and patterns of generated outputs."""
    return {p for p in REPO_PATH.findall(text) if not any(c in p for c in "*<>{}…") and "results/" not in p}


def test_every_repository_path_a_page_names_exists():
    pages = [REPO / "README.md", REPO / "config" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    missing = {
        f"{page.relative_to(REPO)}: {path}"
        for page in pages
        if page.name != "changelog.md"  # the changelog names paths as they were
        for path in repo_paths(page.read_text())
        if not (REPO / path.rstrip("/")).exists()
    }
    assert not missing, sorted(missing)


def test_the_path_check_sees_a_stale_path():
    assert repo_paths("see `fedhet/privacy.py` and `fedhet/data/shift.py`") == {
        "fedhet/privacy.py",
        "fedhet/data/shift.py",
    }
