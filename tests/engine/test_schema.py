"""cases/schema.json is current, and every case of the suite conforms to it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from runner.lang.schema import build, render
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
