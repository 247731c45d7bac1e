"""The configuration reference of docs/configuration.md, generated from config/schema.yaml.

Every key of the schema, nested keys by their dotted path (``training.lr``), the keys of a
list's items with ``[]`` (``hospitals[].size``) and the keys of a mapping with free names by a
placeholder (``experiments.<name>.dp.epsilon``), with ``$ref`` definitions resolved: its type,
default, allowed values, description, and an example, taken from config/config.yaml where the
study sets the key and from the default otherwise.

The reference is the block of docs/configuration.md between
``<!-- generated: configuration-reference (python docs/gen_config.py) -->`` and
``<!-- end generated -->``; the prose around it is written by hand.

    python docs/gen_config.py          # rewrite the block in place
    python docs/gen_config.py --check  # exit 1, with a diff, if the committed page differs

Plain Python + PyYAML: no fedhet import.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Path("config/schema.yaml")
CONFIG = Path("config/config.yaml")
PAGE = Path("docs/configuration.md")
COMMAND = "python docs/gen_config.py"
START = f"<!-- generated: configuration-reference ({COMMAND}) -->"
END = "<!-- end generated -->"
BLOCK_RE = re.compile(re.escape(START) + r"\n.*?" + re.escape(END), re.DOTALL)

# How a mapping with free key names is written in a key's path.
PLACEHOLDERS = {"experiments": "<name>", "experiments.<name>.grid": "<type>.<field>"}
EXAMPLE_WIDTH = 120  # characters of an example before a list is cut with …
MISSING = object()


@dataclass(frozen=True)
class Key:
    path: tuple[str, ...]  # segments; "[]" ends a segment whose value is a list item
    schema: dict  # $ref resolved, siblings of the $ref kept
    required: bool

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def description(self) -> str:
        return " ".join(str(self.schema.get("description", "")).split())


# --- walking the schema ----------------------------------------------------------------------


def resolve(node: dict, root: dict) -> dict:
    """``node`` with its ``$ref`` (``#/definitions/...``) replaced by the definition; the
    node's own keywords (a description next to the ``$ref``) win over the definition's."""
    seen = set()
    while "$ref" in node:
        ref = node["$ref"]
        if ref in seen or not ref.startswith("#/"):
            raise ValueError(f"cannot resolve $ref {ref!r}")
        seen.add(ref)
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _shallow(node: dict, root: dict) -> dict:
    """``resolve``, and the same for a list's items and for ``anyOf``'s alternatives (for the
    type and allowed columns)."""
    node = resolve(node, root)
    if isinstance(node.get("items"), dict):
        node = {**node, "items": resolve(node["items"], root)}
    if "anyOf" in node:
        node = {**node, "anyOf": [_shallow(alt, root) for alt in node["anyOf"]]}
    return node


def keys(schema: dict) -> list[Key]:
    """Every key of ``schema``, depth first in the schema's order."""
    return list(_walk(schema, schema, ()))


def _walk(node: dict, root: dict, path: tuple[str, ...]):
    node = resolve(node, root)
    required = set(node.get("required", []))
    for name, sub in node.get("properties", {}).items():
        sub = _shallow(sub, root)
        yield Key((*path, name), sub, name in required)
        yield from _children(sub, root, (*path, name))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        extra = _shallow(extra, root)
        placeholder = PLACEHOLDERS.get(".".join(path), "<key>")
        yield Key((*path, placeholder), extra, False)
        yield from _children(extra, root, (*path, placeholder))


def _children(node: dict, root: dict, path: tuple[str, ...]):
    if "properties" in node or isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node, root, path)
    items = node.get("items")
    if isinstance(items, dict):
        items = resolve(items, root)
        if "properties" in items:
            yield from _walk(items, root, (*path[:-1], path[-1] + "[]"))


# --- one key's columns -----------------------------------------------------------------------


def type_of(node: dict) -> str:
    if "anyOf" in node:
        return " or ".join(dict.fromkeys(type_of(alt) for alt in node["anyOf"]))
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = node.get("items")
        return f"list of {type_of(items)}" if isinstance(items, dict) and items else "list"
    if kind == "object":
        return "mapping"
    return kind or "any"


def _number(x) -> str:
    return format(x, "g") if isinstance(x, float) else str(x)


def allowed(node: dict) -> str:
    """Enum values and ranges, for the key itself and for a list's items ("each ...")."""
    parts = []
    if "enum" in node:
        parts.append(", ".join(f"`{v}`" for v in node["enum"]))
    bounds = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))
    rng = [f"{sign} {_number(node[k])}" for k, sign in bounds if k in node]
    if rng:
        parts.append(", ".join(rng))
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    if "propertyNames" in node and "pattern" in node["propertyNames"]:
        parts.append(f"keys match `{node['propertyNames']['pattern']}`")
    if node.get("type") == "array":
        if node.get("minItems") == 1:
            parts.append("non-empty")
        elif "minItems" in node:
            parts.append(f"at least {node['minItems']} items")
        if node.get("uniqueItems"):
            parts.append("no repeats")
        items = node.get("items")
        if isinstance(items, dict) and "properties" not in items:
            inner = allowed(items)
            if inner:
                parts.append(f"each: {inner}")
    if "anyOf" in node:
        alts = [a for a in (allowed(alt) for alt in node["anyOf"]) if a]
        if alts:
            parts.append(" or ".join(alts))
    return "; ".join(parts)


def yaml_value(value) -> str:
    """A value as YAML flow (one line): ``[0.1, 1, .inf]``, ``{placement: [all]}``, ``null``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:  # 1e-05 -> 1.0e-05: YAML reads a float only with a dot
            text = text.replace("e", ".0e", 1)
        return text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value) if value == "" or re.search(r"[:#{}\[\],&*!|>'\"%@`]|^\s|\s$", value) else value
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no YAML form for {value!r}")


def short(value) -> str:
    """``yaml_value``, with a long list cut after the items that fit."""
    text = yaml_value(value)
    if len(text) <= EXAMPLE_WIDTH or not isinstance(value, list):
        return text
    shown = []
    for item in value:
        if len(", ".join(shown + [yaml_value(item)])) > EXAMPLE_WIDTH and shown:
            break
        shown.append(yaml_value(item))
    return "[" + ", ".join(shown) + ", …]"


def lookup(config, path: tuple[str, ...]):
    """The first value at ``path`` in ``config`` (placeholders match any key, ``[]`` any
    item), or MISSING."""
    if not path:
        return config
    head, rest = path[0], path[1:]
    is_item = head.endswith("[]")
    name = head[:-2] if is_item else head
    if name.startswith("<"):
        candidates = list(config.values()) if isinstance(config, dict) else []
    else:
        candidates = [config[name]] if isinstance(config, dict) and name in config else []
    if is_item:
        candidates = [item for c in candidates if isinstance(c, list) for item in c]
    for candidate in candidates:
        found = lookup(candidate, rest)
        if found is not MISSING:
            return found
    return MISSING


def is_container(key: Key) -> bool:
    return "properties" in key.schema or isinstance(key.schema.get("additionalProperties"), dict)


def example(key: Key, config: dict) -> str:
    if is_container(key):
        return "see below"
    value = lookup(config, key.path)
    if value is MISSING:
        value = key.schema.get("default", MISSING)
    return "—" if value is MISSING else f"`{short(value)}`"


def default(key: Key) -> str:
    if "default" in key.schema:
        return f"`{yaml_value(key.schema['default'])}`"
    return "required" if key.required else "—"


# --- the page --------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Markdown table cell: outside code spans, ``|`` escaped and ``<`` written as an entity
    (Python-Markdown's tables split no cell inside a code span, and show a ``\\|`` there as is)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = parts[i].replace("|", "\\|").replace("<", "&lt;")
    return "`".join(parts)


def render(schema: dict, config: dict) -> str:
    """The block's text: one section per top-level key, a table of it and its nested keys."""
    all_keys = keys(schema)
    lines = [
        "Generated from `config/schema.yaml` by `python docs/gen_config.py`; examples are the values",
        "of `config/config.yaml` where the study sets the key, otherwise the default.",
        "",
    ]
    for top in schema.get("properties", {}):
        section = [k for k in all_keys if k.path[0].removesuffix("[]") == top]
        lines += [f"### `{top}`", ""]
        lines += ["| key | type | default | allowed | example | description |", "|---|---|---|---|---|---|"]
        for k in section:
            cells = [f"`{k.name}`", type_of(k.schema), default(k), allowed(k.schema), example(k, config), k.description]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _load(root: Path) -> tuple[dict, dict]:
    return yaml.safe_load((root / SCHEMA).read_text()), yaml.safe_load((root / CONFIG).read_text())


def block(root: Path = ROOT) -> str:
    return f"{START}\n{render(*_load(root))}{END}"


def undocumented(root: Path = ROOT) -> list[str]:
    """Schema keys without a description (their own or their definition's)."""
    schema, _ = _load(root)
    return [k.name for k in keys(schema) if not k.description]


def check(root: Path = ROOT) -> list[str]:
    """Problems: a missing block, or a block that differs from the schema (with a diff)."""
    page = (root / PAGE).read_text()
    found = BLOCK_RE.findall(page)
    if len(found) != 1:
        return [f"{PAGE}: expected one '{START}' ... '{END}' block, found {len(found)}"]
    want = block(root)
    if found[0] == want:
        return []
    diff = difflib.unified_diff(found[0].splitlines(), want.splitlines(), str(PAGE), "from the schema", lineterm="")
    return [f"{PAGE}: the configuration reference differs from config/schema.yaml:\n" + "\n".join(diff)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report differences, change nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (config/, docs/)")
    args = parser.parse_args(argv)
    if not args.check:
        path = args.root / PAGE
        page = path.read_text()
        if not BLOCK_RE.search(page):
            print(f"{PAGE}: no '{START}' ... '{END}' block to rewrite", file=sys.stderr)
            return 1
        new = BLOCK_RE.sub(lambda _: block(args.root), page)
        if new != page:
            path.write_text(new)
    problems = check(args.root)
    for p in problems:
        print(p, end="\n\n")
    missing = undocumented(args.root)
    if missing:
        print("schema keys without a description: " + ", ".join(missing))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
