"""Custom reward formulas: a small, safe arithmetic language over a trial's reported metrics.

Grammar (a subset of Python expressions, parsed with ``ast.parse(mode="eval")`` and checked against a
whitelist of node types; nothing is ever passed to ``eval`` or ``exec``)::

    expr     := number | metric | expr op expr | -expr | +expr | ( expr ) | function ( expr, ... )
    op       := +  -  *  /  **
    function := min | max | log | exp | sqrt | abs       (log(x) is natural; log(x, base) also works)
    metric   := a name the trainer or the latency service reports, e.g. accuracy, latency_ms, memory_mb

Everything is computed in floating point (so ``2 ** 1000000`` overflows with a clear error instead of
building a huge integer). Attribute access, indexing, strings, lambdas, comprehensions, comparisons and any
other construct are rejected when the job is loaded, with the column where they start.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nasapp.engine.errors import NasappError

KEY = "reward.formula"
MAX_LENGTH = 2000
MAX_DEPTH = 200  # nesting of operations and calls: far deeper than real formulas, far inside Python's stack

_BINARY: dict[type[ast.operator], tuple[str, Callable[[float, float], float]]] = {
    ast.Add: ("+", lambda a, b: a + b),
    ast.Sub: ("-", lambda a, b: a - b),
    ast.Mult: ("*", lambda a, b: a * b),
    ast.Div: ("/", lambda a, b: a / b),
    ast.Pow: ("**", math.pow),  # float only: raises on overflow and on (-8) ** 0.5 instead of going complex
}


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


# name -> (function, fewest arguments, most arguments or None for any number)
FUNCTIONS: dict[str, tuple[Callable[..., float], int, int | None]] = {
    "min": (lambda *args: min(args), 1, None),
    "max": (lambda *args: max(args), 1, None),
    "log": (_log, 1, 2),
    "exp": (math.exp, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
}

# What a user most likely meant when they wrote a construct we reject.
_REJECTED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access ('.') is not allowed",
    ast.Subscript: "indexing ('[...]') is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Compare: "comparisons are not allowed (use min/max)",
    ast.BoolOp: "'and'/'or' are not allowed (use min/max)",
    ast.IfExp: "'if ... else' is not allowed (use min/max)",
    ast.NamedExpr: "':=' is not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Set: "sets are not allowed",
    ast.JoinedStr: "strings are not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}


class FormulaError(NasappError):
    """A formula that does not parse, or that cannot be evaluated on a trial's metrics."""


def _where(node: ast.AST, text: str) -> str:
    line = getattr(node, "lineno", 1)
    column = getattr(node, "col_offset", 0) + 1
    return f"column {column}" if line == 1 and "\n" not in text else f"line {line}, column {column}"


def _fail(text: str, node: ast.AST, problem: str) -> FormulaError:
    return FormulaError(f"{KEY}: {problem} at {_where(node, text)}")


def _number_text(value: float) -> str:
    return f"({value:g})" if value < 0 else f"{value:g}"


@dataclass(frozen=True)
class Formula:
    """A checked formula. ``names``: the metric names it uses; ``evaluate(metrics)`` computes it."""

    text: str
    tree: ast.Expression = field(repr=False, compare=False)
    names: frozenset[str] = frozenset()

    def evaluate(self, metrics: Mapping[str, Any]) -> float:
        """The formula's value on ``metrics``; a missing or non-numeric metric, a math error (log(0),
        division by zero, overflow) or a non-finite result raise :class:`FormulaError`."""
        missing = sorted(self.names - metrics.keys())
        if missing:
            reported = ", ".join(sorted(metrics)) or "nothing"
            used = ", ".join(f"'{n}'" for n in missing)
            raise FormulaError(f"{KEY} uses {used} but the trial reported only: {reported}")
        values: dict[str, float] = {}
        for name in self.names:
            raw = metrics[name]
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise FormulaError(f"{KEY} uses '{name}' but the trial reported {name} = {raw!r}, not a number")
            values[name] = float(raw)
        try:
            result = self._eval(self.tree.body, values)
        except FormulaError:
            raise
        except Exception as error:  # noqa: BLE001 - the formula's evaluation must never crash the runner
            raise FormulaError(f"{KEY} = {self.text!r} could not be evaluated ({type(error).__name__})") from None
        if not math.isfinite(result):
            shown = ", ".join(f"{n} = {_number_text(values[n])}" for n in sorted(values))
            raise FormulaError(f"{KEY} = {self.text!r} gave {result} (with {shown or 'no metrics'})")
        return result

    def _eval(self, node: ast.AST, values: dict[str, float]) -> float:
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, values)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            symbol, function = _BINARY[type(node.op)]
            left, right = self._eval(node.left, values), self._eval(node.right, values)
            try:
                return function(left, right)
            except ZeroDivisionError:
                raise _fail(self.text, node, f"division by zero ({_number_text(left)} / 0)") from None
            except OverflowError:
                raise _fail(self.text, node, f"overflow in {_number_text(left)} {symbol} "
                                             f"{_number_text(right)}") from None
            except ValueError:
                raise _fail(self.text, node, f"{_number_text(left)} {symbol} {_number_text(right)} "
                                             "is not a real number") from None
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            name = node.func.id
            args = [self._eval(arg, values) for arg in node.args]
            function = FUNCTIONS[name][0]
            try:
                return float(function(*args))
            except (ValueError, ZeroDivisionError):
                shown = ", ".join(_number_text(a) for a in args)
                raise _fail(self.text, node, f"{name}({shown}) is undefined") from None
            except OverflowError:
                shown = ", ".join(_number_text(a) for a in args)
                raise _fail(self.text, node, f"{name}({shown}) overflows") from None
        raise AssertionError(f"unchecked node {type(node).__name__}")  # compile_formula checked the tree


def compile_formula(text: str) -> Formula:
    """Parse and check a formula; problems raise :class:`FormulaError` naming the problem and its column."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(f"{KEY}: empty formula; write e.g. \"accuracy * (latency_ms / 20) ** -0.07\"")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"{KEY}: {len(text)} characters is too long (at most {MAX_LENGTH})")
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        where = f"column {error.offset}" if (error.lineno or 1) == 1 else \
            f"line {error.lineno}, column {error.offset}"
        detail = f" ({error.msg})" if error.msg and error.msg != "invalid syntax" else ""
        raise FormulaError(f"{KEY}: syntax error at {where}{detail}") from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError(f"{KEY}: the formula is nested too deeply or is not valid text") from None
    if _depth(tree.body) > MAX_DEPTH:
        raise FormulaError(f"{KEY}: the formula is nested too deeply (more than {MAX_DEPTH} levels)")
    names: set[str] = set()
    _check(tree.body, source, names)
    formula = Formula(text=source, tree=tree, names=frozenset(names))
    _try_on_sample_values(formula)
    return formula


def _depth(root: ast.AST) -> int:
    """How deeply ``root`` nests, counted without recursion (a deep tree must not exhaust Python's stack)."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _try_on_sample_values(formula: Formula) -> None:
    """Evaluate the formula once with every metric at 1.0: a formula that cannot be computed at all fails when
    the job is created. Math that depends on the values (log(x - 1) at x = 1) is left to the trials."""
    try:
        formula.evaluate(dict.fromkeys(formula.names, 1.0))
    except FormulaError as error:
        if "could not be evaluated" in str(error):
            raise


def _check(node: ast.AST, text: str, names: set[str]) -> None:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "strings are" if isinstance(value, str | bytes) else f"{value!r} is"
            raise _fail(text, node, f"{kind} not allowed (only numbers)")
        try:
            finite = math.isfinite(float(value))
        except OverflowError:
            finite = False
        if not finite:
            raise _fail(text, node, "a number too large for floating point")
        return
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise _fail(text, node, f"'{node.id}' is a function; call it like {node.id}(...)")
        if node.id.startswith("_"):
            raise _fail(text, node, f"name '{node.id}' is not allowed (metric names do not start with '_')")
        names.add(node.id)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            symbol = "not" if isinstance(node.op, ast.Not) else "~"
            raise _fail(text, node, f"'{symbol}' is not allowed")
        _check(node.operand, text, names)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _fail(text, node, f"operator {type(node.op).__name__} is not allowed (use + - * / **)")
        _check(node.left, text, names)
        _check(node.right, text, names)
        return
    if isinstance(node, ast.Call):
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute):
                raise _fail(text, func, _REJECTED[ast.Attribute])
            raise _fail(text, node, "only the functions " + ", ".join(FUNCTIONS) + " can be called")
        if func.id not in FUNCTIONS:
            raise FormulaError(f"{KEY}: unknown function '{func.id}' at {_where(node, text)}; "
                               f"known functions: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise _fail(text, node, f"{func.id}() takes no keyword arguments")
        _, fewest, most = FUNCTIONS[func.id]
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            wanted = f"{fewest}" if fewest == most else (f"{fewest} or more" if most is None
                                                         else f"{fewest} to {most}")
            raise _fail(text, node, f"{func.id}() takes {wanted} argument(s), got {count}")
        for arg in node.args:
            _check(arg, text, names)
        return
    problem = _REJECTED.get(type(node), f"{type(node).__name__} is not allowed")
    raise _fail(text, node, problem)
