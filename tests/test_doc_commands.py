"""Every `snakemake …` and `fedhet …` command the README and the docs show works as written:
Snakemake commands as a dry run (`-n`) of a copy of the workflow, fedhet commands through
their argument parser (and `fedhet plan` in full)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO, copy_workflow
from fedhet.cli import build_parser, main

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCED = re.compile(r"```(?:bash|sh|console)?\n(.*?)```", re.S)
INLINE = re.compile(r"`((?:snakemake|fedhet) [^`]+)`")


def commands() -> list[tuple[str, str]]:
    """(page, command) for every command in a fenced block (continuation lines joined, comments
    and environment assignments dropped) and every inline code span that is one."""
    found = []
    for page in PAGES:
        text, name = page.read_text(), str(page.relative_to(REPO))
        for block in FENCED.findall(text):
            for command in re.sub(r"\\\n\s*", " ", block).splitlines():
                found.append((name, command))
        # Inline spans: Snakemake commands only (a `fedhet cell --device` in prose names an option).
        found += [(name, command) for command in INLINE.findall(text) if command.startswith("snakemake")]
    out = []
    for name, command in found:
        if not re.match(r"\s*(\w+=\S*\s+)*(snakemake|fedhet)\s", command):
            continue  # not a command of ours (code, output, another tool)
        words = shlex.split(command, comments=True)
        while words and re.fullmatch(r"\w+=\S*", words[0]):
            words.pop(0)
        words = ["2" if w == "N" else w for w in words]  # "--cores N": any number of cores
        if words and words[0] in ("snakemake", "fedhet") and "<" not in command and "…" not in command:
            out.append((name, shlex.join(words)))
    return sorted(set(out))


COMMANDS = commands()


def test_the_pages_show_commands():
    assert sum(c.startswith("snakemake") for _, c in COMMANDS) >= 10
    assert any(c.startswith("fedhet plan") or c.startswith("fedhet cell") for _, c in COMMANDS)


# What a dry run here cannot show: a GPU, a conda install, a report of a finished run.
NEEDS = {"device=cuda": "a CUDA GPU", "--sdm": "conda", "--report": "a finished run"}
SNAKEMAKE = [c for c in COMMANDS if c[1].startswith("snakemake")]


def need(command: str) -> str | None:
    words = shlex.split(command)[1:]
    return next((n for marker, n in NEEDS.items() if any(w.startswith(marker) for w in words)), None)


@pytest.fixture(scope="module")
def dry_runs(request, tmp_path_factory, fashion_mirror, medmnist_mirror) -> dict[str, Future]:
    """One dry run per distinct command among the selected tests, two at a time (each is mostly
    single-threaded DAG building), each in its own copy of the workflow."""
    selected = {
        item.callspec.params["command"]
        for item in request.session.items
        if item.originalname == "test_snakemake_commands_dry_run"
    }
    env = {**os.environ, "FEDHET_DATA_MIRROR": f"{fashion_mirror}:{medmnist_mirror}"}

    def dry_run(command: str, workdir: Path) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "snakemake", *shlex.split(command)[1:], "-n"]
        return subprocess.run(cmd, cwd=copy_workflow(workdir), env=env, capture_output=True, text=True)

    commands = [c for c in sorted(selected) if need(c) is None]
    workdirs = [tmp_path_factory.mktemp("commands") for _ in commands]  # numbered here, not in threads
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {c: pool.submit(dry_run, c, w) for c, w in zip(commands, workdirs, strict=True)}


@pytest.mark.slow
@pytest.mark.parametrize(("page", "command"), SNAKEMAKE)
def test_snakemake_commands_dry_run(dry_runs, page, command):
    if need(command):
        pytest.skip(f"`{command}` needs {need(command)}")
    done = dry_runs[command].result()
    assert done.returncode == 0, f"{page}: `{command}` fails as a dry run:\n{done.stderr[-3000:]}"


@pytest.mark.parametrize(("page", "command"), [c for c in COMMANDS if c[1].startswith("fedhet")])
def test_fedhet_commands_parse(page, command, capsys, monkeypatch):
    words = shlex.split(command)[1:]
    args = build_parser().parse_args(words)  # exits (SystemExit) on an unknown or missing argument
    if args.command == "plan":
        monkeypatch.chdir(REPO)
        assert main(words) == 0 and "total" in capsys.readouterr().out
    for value in vars(args).values():
        paths = value if isinstance(value, list) else [value]
        for path in paths:
            if isinstance(path, Path) and path.suffix in (".yaml", ".csv") and path.parts[0] in ("config", "docs"):
                assert (REPO / path).exists(), f"{page}: `{command}` names {path}, which does not exist"
