"""The contract's integer expressions, compiled from a whitelisted Python AST.

Nothing is evaluated but integer literals, names the caller supplies, the operators below and the
four listed functions: no attribute access, subscripts, lambdas, comprehensions or other calls.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping
from typing import Any

from runner.errors import MmapconfError


class ExprError(MmapconfError):
    """An expression is not of the language, or cannot be evaluated with the names given."""


def _align_up(x: int, a: int) -> int:
    return -(-x // a) * a


def _align_down(x: int, a: int) -> int:
    return x // a * a


def _pick(index: int, *choices: int) -> int:
    """``pick(i, a, b, c)``: the i-th choice, for a value that differs per iteration."""
    if not 0 <= index < len(choices):
        raise ExprError(f"pick: index {index} is outside 0..{len(choices) - 1}")
    return choices[index]


FUNCTIONS: dict[str, Callable[..., int]] = {
    "min": min,
    "max": max,
    "align_up": _align_up,
    "align_down": _align_down,
    "pick": _pick,
}
_ARITY = {
    "min": (1, 64),
    "max": (1, 64),
    "align_up": (2, 2),
    "align_down": (2, 2),
    "pick": (2, 64),
}

_BINOPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
    ast.BitXor: operator.xor,
}
_UNOPS: dict[type, Callable[[int], int]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
}
MAX_LENGTH = 1000
MAX_SHIFT = 256

Env = Mapping[str, Any]


class Expr:
    """A parsed expression: ``names`` it reads, and ``eval(env)`` to compute it."""

    def __init__(self, text: str, fn: Callable[[Env], int], names: frozenset[str]):
        self.text, self._fn, self.names = text, fn, names

    def eval(self, env: Env) -> int:
        try:
            return self._fn(env)
        except ZeroDivisionError:
            raise ExprError(f"{self.text!r}: division by zero") from None
        except KeyError as e:
            raise ExprError(f"{self.text!r}: {e.args[0]!r} is not bound") from None


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Expr:
    """Compile ``text``; raise ExprError naming what is not allowed."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"{text!r} is not an expression: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExprError(f"{text!r} is not an expression") from None
    names: set[str] = set()
    try:
        fn = _compile(tree.body, names)
    except RecursionError:
        raise ExprError(f"{text!r} is nested too deeply") from None
    return Expr(text, fn, frozenset(names))


def _compile(node: ast.AST, names: set[str]) -> Callable[[Env], int]:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        value = node.value
        return lambda env: value
    if isinstance(node, ast.Name):
        name = node.id
        names.add(name)
        return lambda env: env[name]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        op = _BINOPS[type(node.op)]
        left, right = _compile(node.left, names), _compile(node.right, names)
        if isinstance(node.op, ast.LShift | ast.RShift | ast.Mult):
            return lambda env: _bounded(op, left(env), right(env))
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNOPS:
        uop, operand = _UNOPS[type(node.op)], _compile(node.operand, names)
        return lambda env: uop(operand(env))
    if isinstance(node, ast.Call):
        return _compile_call(node, names)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return _compile_field(node.value.id, node.attr, names)
    raise ExprError(f"{_describe(node)} is not allowed in an expression")


def _compile_call(node: ast.Call, names: set[str]) -> Callable[[Env], int]:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        raise ExprError("only min, max, align_up, align_down and pick may be called")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise ExprError(f"{node.func.id}() takes plain arguments only")
    low, high = _ARITY[node.func.id]
    if not low <= len(node.args) <= high:
        raise ExprError(f"{node.func.id}() takes {low if low == high else f'{low}+'} arguments")
    fn = FUNCTIONS[node.func.id]
    args = [_compile(a, names) for a in node.args]
    return lambda env: fn(*(a(env) for a in args))


def _compile_field(name: str, attr: str, names: set[str]) -> Callable[[Env], int]:
    """``st.size``: a field of a mapping result (a dict lookup, never getattr)."""
    if attr.startswith("_"):
        raise ExprError(f"attribute access (.{attr}) is not allowed in an expression")
    names.add(name)

    def field(env: Env) -> int:
        value = env[name]
        if not isinstance(value, dict) or attr not in value:
            raise ExprError(f"{name}.{attr}: {name} has no field {attr!r}")
        if type(value[attr]) is not int:
            raise ExprError(f"{name}.{attr} is not an integer")
        return value[attr]

    return field


def _bounded(op: Callable[[int, int], int], a: int, b: int) -> int:
    # Keep a hostile expression from building a number of millions of digits.
    if op in (operator.lshift, operator.rshift) and not 0 <= b <= MAX_SHIFT:
        raise ExprError(f"shift count {b} outside 0..{MAX_SHIFT}")
    result = op(a, b)
    if result.bit_length() > 4 * MAX_SHIFT:
        raise ExprError("value too large")
    return result


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r}"
    if isinstance(node, ast.Attribute):
        return f"attribute access (.{node.attr})"
    return type(node).__name__
