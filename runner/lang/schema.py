"""The JSON Schema of the case language, made from the operation table (for editors).

``python -m runner.lang.schema > cases/schema.json`` writes it; a self-test checks it is current and
that every case under cases/ conforms. Meaning (names bound, flags known, ...) is checked by
runner/lang/validate.py, which a schema cannot express.
"""

from __future__ import annotations

import json
from typing import Any

from runner.lang import names
from runner.lang.ops import (
    BACKINGS,
    CASE_KEYS,
    COMPARATORS,
    CONDITION_KEYS,
    OPS,
    SYSTEM_PATHS,
)

# a name, not a place: editors get the file itself (mmapconf schema --path; docs/editors.md)
SCHEMA_ID = "urn:mmapconf:case-format:1"
_INT = {"type": ["integer", "string"], "description": "an integer or an expression"}
_FLAG = {"type": ["integer", "string"]}
_KINDS: dict[str, dict[str, Any]] = {
    "int": _INT,
    "file": {"type": "string"},
    "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
    "event": {"type": "string"},
    "signal": {"enum": sorted(names.SIGNAL)},
    "text": {"type": "string"},
    "hex": {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$"},
    "format": {"type": "string"},
    "values": {"type": "array", "items": {"type": ["integer", "string"]}},
    "steps": {"$ref": "#/$defs/steps"},
    "path": {"enum": sorted(SYSTEM_PATHS)},
    "until": {
        "type": "object",
        "properties": {"errno": {"type": ["string", "array"]}},
        "required": ["errno"],
        "additionalProperties": False,
    },
}


def _kind(kind: str) -> dict[str, Any]:
    if kind.startswith("flags:"):
        family = sorted(names.FLAG_FAMILIES[kind[6:]])
        return {
            "anyOf": [_FLAG, {"type": "array", "items": _FLAG}],
            "description": "flag names joined by |: " + ", ".join(family[:40]),
        }
    return _KINDS[kind]


def _op_schema(op: str) -> dict[str, Any]:
    spec = OPS[op]
    args = {k: _kind(v) for k, v in spec.args.items()}
    value: list[dict[str, Any]] = [
        {"type": "object", "properties": args, "additionalProperties": False},
        {"type": "null"},
    ]
    if spec.primary:
        value.append(args[spec.primary])
    props: dict[str, Any] = {op: {"anyOf": value}, **args}
    props.update(
        {"as": _KINDS["name"], "note": {"type": "string"}, "expect": {"$ref": "#/$defs/expect"}}
    )
    return {"type": "object", "required": [op], "properties": props, "additionalProperties": False}


def build() -> dict[str, Any]:
    condition = {"type": "object", "propertyNames": {"enum": sorted(CONDITION_KEYS)}}
    entry_props: dict[str, Any] = {
        "when": condition,
        "errno": {
            "anyOf": [
                {"enum": sorted(names.ERRNO)},
                {"type": "array", "items": {"enum": sorted(names.ERRNO)}},
            ]
        },
        "signal": {"enum": sorted(names.SIGNAL)},
        "si_code": {"enum": sorted(names.ALL_SI_CODES)},
        "si_addr": _INT,
        "value": {
            "description": "a value, {hex}, {data}, a mapping subset, or comparators "
            + ", ".join(sorted(COMPARATORS))
        },
    }
    entry = {"type": "object", "properties": entry_props, "additionalProperties": False}
    steps = {"type": "array", "minItems": 1, "items": {"anyOf": [_op_schema(o) for o in OPS]}}
    props: dict[str, Any] = {
        "id": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"},
        "title": {"type": "string"},
        "claim": {"type": "string"},
        "refs": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "requires": condition,
        "backings": {
            "anyOf": [
                {"enum": list(BACKINGS)},
                {"type": "array", "items": {"enum": list(BACKINGS)}},
            ]
        },
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        "setup": {"$ref": "#/$defs/steps"},
        "steps": {"$ref": "#/$defs/steps"},
        "processes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["steps"],
                "additionalProperties": False,
                "properties": {"steps": {"$ref": "#/$defs/steps"}},
            },
        },
    }
    assert set(props) == set(CASE_KEYS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mmapconf case",
        "type": "object",
        "required": [k for k, required in CASE_KEYS.items() if required],
        "properties": props,
        "additionalProperties": False,
        "$defs": {"steps": steps, "expect": {"anyOf": [entry, {"type": "array", "items": entry}]}},
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
