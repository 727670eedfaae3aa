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
    ARG_KINDS,
    BACKINGS,
    CASE_KEYS,
    COMPARATORS,
    CONDITION_KEYS,
    MOUNT_OPTION,
    OPS,
    PROCESS_NAME,
    PROVISION_FSTYPES,
    arg_kind,
)

# a name, not a place: editors get the file itself (mmapconf schema --path; docs/editors.md)
SCHEMA_ID = "urn:mmapconf:case-format:1"


def _kind(kind: str) -> dict[str, Any]:
    spec, family = arg_kind(kind)
    if not family:
        return spec.schema
    known = sorted(names.FLAG_FAMILIES[family])
    return {**spec.schema, "description": "flag names joined by |: " + ", ".join(known[:40])}


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
        {
            "as": ARG_KINDS["name"].schema,
            "note": {"type": "string"},
            "expect": {"$ref": "#/$defs/expect"},
        }
    )
    return {"type": "object", "required": [op], "properties": props, "additionalProperties": False}


def _provision() -> dict[str, Any]:
    option = f"^(({MOUNT_OPTION})(,({MOUNT_OPTION}))*)?$"
    mount = {
        "type": "object",
        "required": ["fstype"],
        "additionalProperties": False,
        "properties": {
            "fstype": {"enum": list(PROVISION_FSTYPES)},
            "options": {"type": "string", "pattern": option},
            "size": _kind("int"),
        },
    }
    flags = sorted(names.FS_FL)
    file = {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "data": {"type": "string"},
            "hex": _kind("hex"),
            "size": _kind("int"),
            "mode": _kind("int"),
            "inode_flags": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"enum": flags}}],
                "description": "inode flags joined by |: " + ", ".join(flags),
            },
        },
    }
    return {
        "type": "object",
        "description": "set up by the harness before the case, undone after it",
        "additionalProperties": False,
        "properties": {
            "mount": mount,
            "files": {"type": "object", "additionalProperties": file},
            "sysctls": {
                "type": "object",
                "description": "vm.* and fs.* sysctls, set in a guest only (--kernel)",
                "propertyNames": {"pattern": r"^(vm|fs)(\.[a-z0-9_]+)+$"},
                "additionalProperties": {"type": ["integer", "string"]},
            },
            "memory": {
                "type": "object",
                "description": "the case runs in its own memory cgroup with this limit (bytes)",
                "required": ["limit"],
                "additionalProperties": False,
                "properties": {"limit": _kind("int")},
            },
            "swap": {
                "type": "object",
                "description": "a swap area of this size (bytes), made and swapped on in a guest "
                "only (--kernel)",
                "required": ["size"],
                "additionalProperties": False,
                "properties": {"size": _kind("int")},
            },
            "core": {
                "type": ["object", "null"],
                "description": "the case's processes dump core into its scratch folder, in a "
                "guest only (--kernel): RLIMIT_CORE (bytes or RLIM_INFINITY) and coredump_filter",
                "additionalProperties": False,
                "properties": {"limit": _kind("int"), "filter": _kind("int")},
            },
        },
    }


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
        "signal": ARG_KINDS["signal"].schema,
        "si_code": {"enum": sorted(names.ALL_SI_CODES)},
        "si_addr": ARG_KINDS["int"].schema,
        "ip": {
            "description": "the faulting instruction's address: an expression, or comparators",
            "anyOf": [
                ARG_KINDS["int"].schema,
                {
                    "type": "object",
                    "propertyNames": {"enum": sorted(COMPARATORS)},
                    "additionalProperties": ARG_KINDS["int"].schema,
                },
            ],
        },
        "value": {
            "description": "a value, {hex}, {data}, {fill}, {contains}, a mapping subset, or "
            "comparators " + ", ".join(sorted(COMPARATORS))
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
            "propertyNames": {"pattern": PROCESS_NAME, "not": {"const": "setup"}},
            "additionalProperties": {
                "type": "object",
                "required": ["steps"],
                "additionalProperties": False,
                "properties": {"steps": {"$ref": "#/$defs/steps"}},
            },
        },
    }
    props["provision"] = _provision()
    props["address_space"] = {
        **ARG_KINDS["int"].schema,
        "description": "RLIMIT_AS headroom in bytes above what a case process maps at its start",
    }
    props["after_reboot"] = {
        "$ref": "#/$defs/steps",
        "description": "steps run in a fresh boot on the disk a power_cut left",
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
