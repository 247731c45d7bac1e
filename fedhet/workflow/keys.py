"""Where the outputs of a run live: the one module that spells an output's key and its path.

A ``Layout`` is one kind of output below a run's results root (``results/[<run>/]<dataset>``):
its directory and the segments of its key, each a template over named fields. The workflow's
rules take their path patterns from here (the field names are the Snakemake wildcards), and
the key types (``fedhet.workflow.config.Cell``, ``fedhet.privacy.audit.AuditCell``,
``fedhet.privacy.audit.EngineAudit``) format and parse their keys through it. Adding an axis
to a cell is a change here and in its key type; no rule retypes a path.

Field values are strings as they appear in a path: ``seed`` is the seed with its holdout
(``0``, ``0-validation``, ``0-public``; ``fedhet.workflow.config.seed_key``), ``m`` a canary count.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """One kind of output: its name (for messages), its directory below the results root and
    its key's segments."""

    name: str
    directory: str
    segments: tuple[str, ...]

    @property
    def template(self) -> str:
        """The key with its fields as ``{name}``: a Snakemake wildcard pattern."""
        return "/".join(self.segments)

    @property
    def fields(self) -> tuple[str, ...]:
        names = [name for _, name, _, _ in string.Formatter().parse(self.template) if name]
        return tuple(dict.fromkeys(names))

    def key(self, **values) -> str:
        missing = set(self.fields) - set(values)
        if missing:
            raise ValueError(f"{self.name} key: missing {', '.join(sorted(missing))}")
        return self.template.format(**{name: values[name] for name in self.fields})

    def key_of(self, wildcards) -> str:
        """The key of a job whose wildcards (attributes named as the fields) are given."""
        return self.key(**{name: getattr(wildcards, name) for name in self.fields})

    def parse(self, key: str) -> dict[str, str]:
        """The fields of ``key``; ``ValueError`` naming the expected shape otherwise."""
        match = self._regex().fullmatch(key)
        if not match:
            shape = self.template.replace("{", "<").replace("}", ">")
            raise ValueError(f"{self.name} key {key!r}: expected {shape}")
        return match.groupdict()

    def _regex(self) -> re.Pattern:
        parts = []
        for literal, name, _, _ in string.Formatter().parse(self.template):
            parts.append(re.escape(literal))
            if name:
                parts.append(f"(?P<{name}>[^/]+)")
        return re.compile("".join(parts))

    def path(self, root: str, **values) -> str:
        return f"{root}/{self.directory}/{self.key(**values)}"

    def pattern(self, root: str, name: str | None = None) -> str:
        """The wildcard path of the output (or of file ``name`` inside it), for a rule."""
        base = f"{root}/{self.directory}/{self.template}"
        return base if name is None else f"{base}/{name}"

    def log(self, root: str, rule: str) -> str:
        return f"{root}/logs/{rule}/{self.template}.log"

    def benchmark(self, root: str, rule: str) -> str:
        return f"{root}/benchmarks/{rule}/{self.template}.tsv"


CELL = Layout("cell", "cells", ("{scenario}", "{mode}", "{algorithm}", "{dp}", "{optim}", "seed{seed}"))
AUDIT_CELL = Layout(
    "audit cell", "audit", ("{scenario}", "{mode}", "{algorithm}", "{dp}", "{optim}", "{canaries}", "seed{seed}")
)
ENGINE_AUDIT = Layout(
    "engine audit", "audit", ("engine", "{scenario}", "{hospital}", "{dp}", "{optim}", "m{m}", "seed{seed}")
)
PARTITIONS = Layout("partitions", "partitions", ("{scenario}", "seed{seed}"))  # every holdout's: seed0, seed0-public, …
SHARED = Layout("shared set", "partitions", ("{scenario}", "shared", "seed{seed}-beta{beta}.parquet"))
CANARIES = Layout("canaries", "partitions", ("{scenario}", "canaries", "seed{seed}-m{m}.parquet"))
LAYOUTS = {
    "cell": CELL,
    "audit_cell": AUDIT_CELL,
    "engine_audit": ENGINE_AUDIT,
    "partitions": PARTITIONS,
    "shared": SHARED,
    "canaries": CANARIES,
}
