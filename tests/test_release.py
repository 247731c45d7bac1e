"""The release files agree: one version in pyproject, the package, CITATION.cff and the changelog."""

import re
import tomllib
from pathlib import Path

import yaml

import fedhet

ROOT = Path(__file__).resolve().parent.parent


def test_one_version_everywhere():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert fedhet.__version__ == version
    assert str(yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"]) == version
    newest = re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert newest and newest.group(1) == version


def test_the_license_is_the_one_pyproject_names():
    license_name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    assert license_name == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
