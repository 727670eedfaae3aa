"""Safe YAML with positions: plain data only, bounded in size, depth and alias expansion.

Mappings and sequences come back as ``Node`` subclasses of dict and list that remember where
they, their keys and their items stand in the file, so every later error can name
file:line:column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from runner.errors import Problem

MAX_FILE_BYTES = 1 << 20
MAX_NODES = 100_000  # after alias expansion: a "billion laughs" document stops here
MAX_DEPTH = 64

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVE_MAX_LEN, _RESOLVE_MAX_KEPT = 64, 50_000
_resolved: dict[tuple[str, tuple[bool, bool]], str] = {}

Pos = tuple[int, int]


class PosDict(dict):
    pos: Pos = (1, 1)
    key_pos: dict
    value_pos: dict


class PosList(list):
    pos: Pos = (1, 1)
    item_pos: list


def _mark(node: yaml.Node | yaml.Event) -> Pos:
    m = node.start_mark
    return (m.line + 1, m.column + 1) if m is not None else (1, 1)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    def construct_mapping(self, node, deep=False):  # noqa: D102 - PyYAML hook
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, "expected a mapping", node.start_mark
            )
        out = PosDict()
        out.pos, out.key_pos, out.value_pos = _mark(node), {}, {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    None, None, "merge keys (<<) are not supported", key_node.start_mark
                )
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool) or key is None:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain scalar", key_node.start_mark
                )
            if key in out:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            out[key] = self.construct_object(value_node, deep=True)
            out.key_pos[key], out.value_pos[key] = _mark(key_node), _mark(value_node)
        return out

    def resolve(self, kind, value, implicit):  # noqa: D102 - PyYAML hook
        # The C parser asks the pure-Python resolver for every scalar's tag, and it tries a list
        # of regexes each time: a third of loading the catalogue, which repeats its scalars
        # (flag names, PAGE, small numbers) over and over. Short scalars' answers are kept.
        if kind is not yaml.ScalarNode or len(value) > _RESOLVE_MAX_LEN:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = _resolved.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_resolved) < _RESOLVE_MAX_KEPT:
                _resolved[key] = tag
        return tag

    def construct_sequence(self, node, deep=False):  # noqa: D102 - PyYAML hook
        out = PosList(self.construct_object(child, deep=True) for child in node.value)
        out.pos, out.item_pos = _mark(node), [_mark(child) for child in node.value]
        return out


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)
for _tag in ("timestamp", "binary", "set", "omap", "pairs"):
    # Only plain JSON-like data: timestamps and the like stay strings or are refused.
    _Loader.yaml_constructors.pop(f"tag:yaml.org,2002:{_tag}", None)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)

# The comma between a call's arguments (align_up(m, PAGE)) would end a plain scalar inside a flow
# mapping ({addr: align_up(m, PAGE)}): before parsing it becomes this character, one for one so
# every position stays, and every string gets its comma back.
_CALL_COMMA = "\ue000"
_CALLS = re.compile(r"(?:align_up|align_down|min|max|pick)\s*$")


def _comma_back(loader: _Loader, node: yaml.ScalarNode) -> str:
    return loader.construct_yaml_str(node).replace(_CALL_COMMA, ",")


_Loader.add_constructor("tag:yaml.org,2002:str", _comma_back)


def protect_call_commas(text: str) -> str:
    """``text`` with the commas inside the language's calls (outside quotes and comments) made
    _CALL_COMMA, line by line; unchanged if it holds that character already."""
    if _CALL_COMMA in text:
        return text
    return "\n".join(_protect_line(line) for line in text.split("\n"))


def _protect_line(line: str) -> str:
    if "(" not in line or "," not in line:
        return line
    out, calls, quote = list(line), [], ""
    for i, c in enumerate(line):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        elif c == "(":
            calls.append(bool(_CALLS.search(line[:i])))
        elif c == ")" and calls:
            calls.pop()
        elif c == "," and calls and calls[-1]:
            out[i] = _CALL_COMMA
    return "".join(out)


@dataclass
class Document:
    data: object
    pos: Pos


def load_documents(path: Path, display: str | None = None) -> tuple[list[Document], list[Problem]]:
    """Every YAML document of a file, or the problems that kept it from loading."""
    name = display or str(path)
    raw, problem = read_bounded(path, name)
    if problem is not None:
        return [], [problem]
    return parse_documents(raw, name)


def read_bounded(path: Path, name: str) -> tuple[bytes, Problem | None]:
    """A case file's bytes, or why they cannot be had (unreadable, over the size limit)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        return b"", Problem(name, 1, 1, f"cannot read: {e.strerror}")
    if len(raw) > MAX_FILE_BYTES:
        return b"", Problem(name, 1, 1, f"larger than {MAX_FILE_BYTES} bytes, the limit")
    return raw, None


def parse_documents(raw: bytes, name: str) -> tuple[list[Document], list[Problem]]:
    """Every YAML document of a file's bytes (shown as ``name``), or the problems in them."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        return [], [Problem(name, line, col, "not UTF-8 text")]
    return _parse(text, name)


def _depth_problem(text: str, name: str) -> Problem | None:
    """Find over-deep nesting with the event parser, which does not recurse: the composer does,
    and a deep enough document would overflow the C stack before Python could object."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Base):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return Problem(name, *_mark(event), f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as e:
        # PyYAML 6.0.4's libyaml stops at its own nesting limit (1000) before we count to ours
        if "nesting depth" in str(e.problem) and e.problem_mark is not None:
            line, col = e.problem_mark.line + 1, e.problem_mark.column + 1
            return Problem(name, line, col, f"nested deeper than {MAX_DEPTH} levels")
        return None  # the real parse below reports it with its position
    except yaml.YAMLError:
        return None
    return None


def _parse(text: str, name: str) -> tuple[list[Document], list[Problem]]:
    problem = _depth_problem(text, name)
    if problem:
        return [], [problem]
    loader = _Loader(protect_call_commas(text))
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            problem = _check_size(data, name, _mark(node))
            if problem:
                return docs, [problem]
            docs.append(Document(data, _mark(node)))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return docs, [Problem(name, line, col, f"YAML: {e.problem or e.context}")]
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        return docs, [Problem(name, line, col, f"YAML: {e.reason} #x{e.character:04x}")]
    except yaml.YAMLError as e:
        return docs, [Problem(name, 1, 1, f"YAML: {e}")]
    except RecursionError:
        return docs, [Problem(name, 1, 1, "nested too deeply")]
    finally:
        loader.dispose()
    return docs, []


def _check_size(data: object, name: str, pos: Pos) -> Problem | None:
    """Refuse documents that alias expansion makes huge or deep, before anything walks them."""
    count = 0
    stack: list[tuple[object, int, frozenset[int]]] = [(data, 0, frozenset())]
    while stack:
        item, depth, ancestors = stack.pop()
        count += 1
        if count > MAX_NODES:
            return Problem(name, *pos, f"more than {MAX_NODES} nodes once aliases are expanded")
        if depth > MAX_DEPTH:
            return Problem(name, *pos, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict | list):
            if id(item) in ancestors:
                return Problem(name, *pos, "an alias refers to its own ancestor (a cycle)")
            inner = ancestors | {id(item)}
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1, inner) for child in children)
    return None
