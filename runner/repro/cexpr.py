"""The case language's integer expressions, written as C over the reproducer's variables.

Names resolve as the engine resolves them: bound names are variables, ``PAGE`` and
``RLIM_INFINITY`` are the program's own, flag names are their numbers (with the name in a
comment). ``//`` and ``%`` are Python's floor division, so they call helpers of that meaning.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from runner.lang import names
from runner.lang.expr import parse
from runner.repro.kinds import Unreproducible, c_name, field_expr

_BINARY = {
    ast.BitOr: ("|", 1),
    ast.BitXor: ("^", 2),
    ast.BitAnd: ("&", 3),
    ast.LShift: ("<<", 4),
    ast.RShift: (">>", 4),
    ast.Add: ("+", 5),
    ast.Sub: ("-", 5),
    ast.Mult: ("*", 6),
}
_CALLS = {ast.FloorDiv: "floordiv", ast.Mod: "floormod"}
_UNARY = {ast.USub: "-", ast.UAdd: "+", ast.Invert: "~"}
_ATOM = 9
I64_MAX = (1 << 63) - 1


def literal(value: int) -> str:
    """An integer constant as C reads it, wrapped to 64 bits as the engine's calls wrap it."""
    if -I64_MAX <= value <= I64_MAX:
        return str(value) if abs(value) < 1 << 31 else f"{value}LL"
    return f"(i64){value & ((1 << 64) - 1):#x}ULL"


def flag_literal(value: int) -> str:
    return f"{value:#x}" if value >= 0 else literal(value)


class CExpr:
    """Writes expressions for one case: ``kinds`` are the kinds of its bound names."""

    def __init__(self, kinds: Mapping[str, str], flags: Mapping[str, int] | None = None):
        self.kinds, self.flags = kinds, flags or {}

    def int_arg(self, value: object) -> str:
        """An ``int`` argument: a YAML integer or an expression over bound names and PAGE."""
        if isinstance(value, int) and not isinstance(value, bool):
            return literal(value)
        if not isinstance(value, str):
            raise Unreproducible(f"{value!r} is not an integer expression")
        return self.text(value)

    def text(self, text: str) -> str:
        tree = ast.parse(parse(text).text.strip(), mode="eval")
        return self._node(tree.body)[0]

    def _node(self, node: ast.AST) -> tuple[str, int]:
        if not any(isinstance(n, ast.Name | ast.Attribute) for n in ast.walk(node)):
            return self._folded(node), _ATOM
        if isinstance(node, ast.Name):
            return self._name(node.id), _ATOM
        if isinstance(node, ast.BinOp) and type(node.op) in _CALLS:
            left, right = self._node(node.left)[0], self._node(node.right)[0]
            return f"{_CALLS[type(node.op)]}({left}, {right})", _ATOM
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            op, prec = _BINARY[type(node.op)]
            left = self._wrapped(node.left, prec, strict=False)
            if prec == 4 and left[:1].isdigit():  # C shifts in the left operand's type
                left = f"(i64){left}"
            right = self._wrapped(node.right, prec, strict=True)
            return f"{left} {op} {right}", prec
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)] + self._wrapped(node.operand, 7, strict=False), 7
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node.func.id, [self._node(a)[0] for a in node.args]), _ATOM
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return self._field(node.value.id, node.attr), _ATOM
        raise Unreproducible(f"{ast.dump(node)} has no C form")  # parse() admits nothing else

    def _folded(self, node: ast.AST) -> str:
        """A part without names, computed here with the language's unbounded integers (C's
        would overflow where Python's do not)."""
        text = ast.unparse(node)
        value = literal(parse(text).eval({}))
        return value if text.lstrip("-").isdigit() else f"{value} /* {text} */"

    def _wrapped(self, node: ast.AST, prec: int, strict: bool) -> str:
        text, inner = self._node(node)
        return f"({text})" if inner < prec or (strict and inner == prec) else text

    def _call(self, fn: str, args: list[str]) -> str:
        if fn in ("align_up", "align_down"):
            return f"{fn}({args[0]}, {args[1]})"
        if fn == "pick":  # the index is plain arithmetic: evaluating it again changes nothing
            index, choices = args[0], args[1:]
            text = f"pick_out({index}, {len(choices)})"
            for k in reversed(range(len(choices))):
                text = f"(({index}) == {k} ? {choices[k]} : {text})"
            return text
        text = args[-1]
        for arg in reversed(args[:-1]):  # min(a, b, c) is min_(a, min_(b, c))
            text = f"{fn}_({arg}, {text})"
        return text

    def knows(self, name: str) -> bool:
        """Whether ``name`` means something here (else the engine sees the text itself)."""
        return name in ("PAGE", "RLIM_INFINITY") or name in self.kinds or name in self.flags

    def _name(self, name: str) -> str:
        if name == "PAGE":
            return "PAGE"
        if name == "RLIM_INFINITY":
            return "(i64)RLIM_INFINITY"
        kind = self.kinds.get(name)  # a bound name hides a flag of the same name
        if kind in ("int", "addr"):
            return c_name(name)
        if kind is None and name in self.flags:
            return f"{flag_literal(self.flags[name])} /* {name} */"
        if kind is None:
            raise Unreproducible(f"{name!r} is not bound")
        raise Unreproducible(f"{name!r} is a {kind} result, not an integer")

    def _field(self, name: str, attr: str) -> str:
        kind = self.kinds.get(name, "")
        expr = field_expr(kind, c_name(name), attr)
        if expr is None:
            raise Unreproducible(f"{name}.{attr}: a {kind or 'unbound'} result has no such field")
        return expr


def flags_value(value: object, family: str) -> tuple[int, str]:
    """A flags argument's number (names of one family joined by ``|``, lists, expressions) and
    its text as the case wrote it."""
    table = names.FLAG_FAMILIES[family]
    items = value if isinstance(value, list) else [value]
    total = 0
    for item in items:
        total |= item if isinstance(item, int) else parse(str(item)).eval(table)
    text = "|".join(str(i) for i in items)
    return total, text


def flags_arg(value: object, family: str) -> str:
    """A flags argument as C: its number, with the case's names in a comment."""
    total, text = flags_value(value, family)
    if text == str(total):
        return flag_literal(total)
    return f"{flag_literal(total)} /* {text} */"
