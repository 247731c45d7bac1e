"""The conda environments in envs/ agree with pyproject.toml.

conda is not needed: the env files are only parsed. Each env must name exactly the packages of
pyproject's [project] dependencies (plus python and pip), pin every one of them to a single
version, and each pin must lie inside pyproject's range; its python must satisfy
requires-python. Rules that carry a `conda:` directive must point at one of these files.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
# conda-forge names of packages whose PyPI name differs
CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch", "python-vl-convert": "vl-convert-python"}
NOT_PACKAGES = {"python", "pip"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def project_requirements() -> dict[str, Requirement]:
    reqs = [Requirement(r) for r in pyproject()["project"]["dependencies"]]
    return {canonicalize_name(r.name): r for r in reqs}


def parse_conda_spec(spec: str) -> tuple[str, str]:
    """'numpy=2.4.6', 'numpy==2.4.6', 'numpy 2.4.6', 'python=3.11.*', 'conda-forge::numpy=2.4.6=py311_0'
    -> (name, version); version is '' unless the spec pins one version (or one series, 3.11.*)."""
    spec = spec.split("::")[-1].strip()
    name = re.match(r"[A-Za-z0-9_.\-]+", spec)
    if not name:
        raise ValueError(f"cannot read conda spec {spec!r}")
    rest = spec[name.end() :].strip()
    pin = re.fullmatch(r"(?:==?)?\s*([0-9][0-9A-Za-z.+!_]*?)(?:\.\*)?(?:[ =]\S+)?", rest)
    return name.group(0), pin.group(1) if rest and pin else ""


def env_packages(path: Path) -> dict[str, tuple[str, str, str]]:
    """Canonical name -> (source, version, raw entry) for every package in an env file."""
    env = yaml.safe_load(path.read_text())
    out: dict[str, tuple[str, str, str]] = {}

    def add(name: str, source: str, version: str, raw: str) -> None:
        key = canonicalize_name(CONDA_TO_PYPI.get(name.lower(), name))
        assert key not in out, f"{path.name}: {key} listed twice ({out[key][2]!r} and {raw!r})"
        out[key] = (source, version, raw)

    for dep in env.get("dependencies") or []:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"{path.name}: unexpected mapping {dep}"
            for line in dep["pip"]:
                line = str(line).strip()
                if line.startswith("-"):  # --extra-index-url and other pip options
                    continue
                try:
                    req = Requirement(line)
                except InvalidRequirement as err:
                    raise AssertionError(f"{path.name}: bad pip requirement {line!r}: {err}") from err
                pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
                add(req.name, "pip", pins[0] if len(pins) == 1 and len(req.specifier) == 1 else "", line)
        else:
            name, version = parse_conda_spec(str(dep))
            add(name, "conda", version, str(dep))
    return out


def test_env_files_exist():
    assert ENV_FILES, "no envs/*.yaml"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_is_well_formed(path):
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and env.get("name"), f"{path.name}: needs a name"
    assert env.get("channels"), f"{path.name}: needs channels"
    assert "defaults" not in env["channels"], f"{path.name}: use conda-forge, not the defaults channel"
    pkgs = env_packages(path)
    if any(src == "pip" for src, _, _ in pkgs.values()):
        assert "pip" in pkgs, f"{path.name}: a pip section needs pip among the conda dependencies"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_names_the_project_dependencies(path):
    pkgs = set(env_packages(path)) - NOT_PACKAGES
    wanted = set(project_requirements())
    assert not wanted - pkgs, f"{path.name} lacks {sorted(wanted - pkgs)} from pyproject.toml"
    assert not pkgs - wanted, f"{path.name} has {sorted(pkgs - wanted)}, not in pyproject.toml's dependencies"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_lie_in_pyproject_ranges(path):
    reqs = project_requirements()
    bad = []
    for name, (source, version, raw) in env_packages(path).items():
        if name in NOT_PACKAGES or name not in reqs:  # extra names: test_env_names_the_project_dependencies
            continue
        if not version:
            bad.append(f"{raw!r} is not pinned to one version")
            continue
        try:
            Version(version)
        except InvalidVersion:
            bad.append(f"{raw!r}: {version!r} is not a version")
            continue
        spec = reqs[name].specifier
        if not spec.contains(version, prereleases=True):
            bad.append(f"{raw!r} ({source}) is outside pyproject's {name}{spec}")
    assert not bad, f"{path.name}: " + "; ".join(bad)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_python_satisfies_requires_python(path):
    pkgs = env_packages(path)
    assert "python" in pkgs, f"{path.name}: pin python"
    version = pkgs["python"][1]
    assert version, f"{path.name}: pin python to a version, e.g. python=3.11"
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    # conda's python=3.11 means 3.11.*: its first release must satisfy requires-python
    assert requires.contains(Version(version)), f"{path.name}: python {version} against requires-python {requires}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_torch_is_the_cpu_build(path):
    """pyproject pins torch so that, with the CPU wheel index, pip adds no CUDA packages."""
    env = yaml.safe_load(path.read_text())
    pkgs = env_packages(path)
    if "torch" not in pkgs:
        pytest.skip("no torch in this env")
    source, _, raw = pkgs["torch"]
    if source == "conda":
        assert "cpu" in raw or any("cpu" in str(d) for d in env["dependencies"] if isinstance(d, str)), (
            f"{path.name}: take torch as conda-forge's pytorch-cpu"
        )
    else:
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        assert any("download.pytorch.org/whl/cpu" in str(line) for line in pip), (
            f"{path.name}: the pip section needs --extra-index-url https://download.pytorch.org/whl/cpu"
        )


def test_rule_conda_directives_point_to_env_files():
    """Any `conda:` directive in the rules names an existing file in envs/ (relative to the rule file)."""
    env_files = {p.resolve() for p in ENV_FILES}
    found = []
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        lines = smk.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != "conda:" and not line.strip().startswith("conda: "):
                continue
            value = line.split(":", 1)[1].strip() or (lines[i + 1].strip() if i + 1 < len(lines) else "")
            m = re.fullmatch(r"""["']([^"']+)["'],?""", value)
            if not m:
                continue  # a variable or function: nothing to check statically
            target = (smk.parent / m.group(1)).resolve()
            found.append(f"{smk.name}:{i + 1}")
            assert target in env_files, f"{smk.name}:{i + 1}: conda env {m.group(1)!r} is not one of envs/*.yaml"
    if not found:
        pytest.skip("no rule has a conda: directive yet")
