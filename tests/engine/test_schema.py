"""cases/schema.json is current, and every case of the suite conforms to it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from runner.lang.schema import SCHEMA_ID, build, render
from runner.lang.yamlsafe import load_documents

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_is_current():
    assert (ROOT / "cases" / "schema.json").read_text() == render(), (
        "cases/schema.json is stale: python -m runner.lang.schema > cases/schema.json"
    )


def test_every_case_conforms():
    validator = jsonschema.Draft202012Validator(build())
    for path in sorted((ROOT / "cases").rglob("*.yaml")):
        docs, problems = load_documents(path)
        if problems:
            continue  # the validator's own tests cover unloadable files
        for doc in docs:
            errors = [
                f"{path}:{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(json.loads(json.dumps(doc.data)))
            ]
            assert not errors, errors[:3]


def test_schema_names_itself_and_is_a_valid_schema():
    schema = json.loads((ROOT / "cases" / "schema.json").read_text())
    assert schema["$id"] == SCHEMA_ID
    jsonschema.Draft202012Validator.check_schema(schema)


def _all_messages(errors) -> list[str]:
    out = []
    for e in errors:
        out.append(e.message)
        out += _all_messages(e.context or [])
    return out


def test_schema_flags_a_misspelt_key_as_an_editor_would():
    validator = jsonschema.Draft202012Validator(build())
    doc = {"id": "x", "title": "t", "steps": [{"mmap": {"lenght": 4096}, "expcet": {}}]}
    messages = _all_messages(validator.iter_errors(doc))
    assert any("'expcet' was unexpected" in m for m in messages)
    assert any("'lenght' was unexpected" in m for m in messages)
