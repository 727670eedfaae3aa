"""cases/schema.json is current, and every case of the suite conforms to it."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import jsonschema
import yaml

from runner.lang import validate
from runner.lang.loader import load_suite
from runner.lang.ops import ARG_KINDS, OPS, PROCESS_NAME
from runner.lang.schema import SCHEMA_ID, build, render
from runner.lang.validate import CaseValidator
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


def test_every_argument_kind_is_in_the_one_registry_and_used():
    """The op table's kinds are ARG_KINDS's, which validate, the schema and resolve read; a kind
    nobody uses would be dead."""
    used = {kind.partition(":")[0] for op in OPS.values() for kind in op.args.values()}
    assert used == set(ARG_KINDS)
    validator_source = inspect.getsource(CaseValidator._arg)
    for kind in ARG_KINDS:
        checked = kind in validate._VALUE_CHECKS or f'kind == "{kind}"' in validator_source
        assert checked, f"the validator does not check {kind}"


NAMES = ["parent-stored", "written", "w_2", "_x", "a" * 32, "bad name", "1x", "a.b", "a" * 33, ""]


def _case_with_names(name: str) -> str:
    return f"""
id: names
title: t
processes:
  {name or "''"}:
    steps:
      - post: {name or "''"}
  other:
    steps:
      - wait_for: {name or "''"}
"""


def test_event_and_process_names_the_validator_and_the_schema_agree(tmp_path):
    """Event names take the characters of process names; an editor and validate say the same."""
    schema = jsonschema.Draft202012Validator(build())
    for i, name in enumerate(NAMES):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(_case_with_names(name))
        problems = [str(p) for p in load_suite([str(path)]).problems]
        by_schema = not list(schema.iter_errors(yaml.safe_load(path.read_text())))
        assert by_schema == (not problems), (name, problems)
        if problems:
            assert len(problems) == 2, problems  # the process name, the other's event name
            assert all(PROCESS_NAME in p for p in problems), problems
