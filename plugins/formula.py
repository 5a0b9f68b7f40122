"""The `calculate_output` language of `multi` graders: Python's `ast` under a whitelist (never `eval`).

Grammar (OpenAI's): numbers (`1`, `0.5`, `.5`, `1e-3`), names (the child graders' keys), `( )`,
`+ - * /`, `^` for power (right-associative, tighter than unary minus: `-2^2` is -4) and the
functions `min max abs floor ceil exp sqrt log` (`min`/`max` take one or more arguments, `log`
one or two: `log(x)` is natural, `log(x, b)` base b, the rest one). Python's `**` is refused.

A regex lexer checks every character and where operands and operators may stand (so a mistake
gets a message with its position), `^` becomes `**`, `ast.parse` builds the tree with Python's
precedence, and a whitelist turns each node into a closure; any other node is refused.
Arithmetic is in floats, so `9^9^9` overflows at once instead of building a huge integer; the
text is bounded in length and the tree in depth.

`parse(text) -> Formula`; `formula.names` is the set of names it uses and
`formula.evaluate({name: value})` the number. Both raise `FormulaError` with a clear message.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

MAX_LENGTH = 4096
"""Longest formula text accepted."""
MAX_DEPTH = 100
"""Deepest expression tree accepted (nesting of operators, calls and parentheses)."""

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^(),]))"
)
_NAME_PREFIX = "v_"  # names reach `ast.parse` prefixed, so a grader called `if` or `None` is a name


class FormulaError(ValueError):
    """A formula that cannot be parsed or evaluated."""


@dataclass(frozen=True)
class _Function:
    impl: Callable[..., float]
    min_args: int
    max_args: int | None

    def arity(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args}"
        if self.min_args == self.max_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


FUNCTIONS: dict[str, _Function] = {
    "min": _Function(lambda *xs: min(xs), 1, None),
    "max": _Function(lambda *xs: max(xs), 1, None),
    "abs": _Function(abs, 1, 1),
    "floor": _Function(lambda x: float(math.floor(x)), 1, 1),
    "ceil": _Function(lambda x: float(math.ceil(x)), 1, 1),
    "exp": _Function(math.exp, 1, 1),
    "sqrt": _Function(math.sqrt, 1, 1),
    "log": _Function(_log, 1, 2),
}

_OPERAND = "a number, a name, a function or '('"


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, position) for each token; kind is number, name or op."""
    tokens = []
    pos = 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if match is None:
            start = len(text) - len(text[pos:].lstrip())
            raise FormulaError(f"unexpected character {text[start]!r} at position {start} in {text!r}")
        kind = match.lastgroup or "op"
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


def _to_python(text: str) -> str:
    """Python source for `text`, after checking where operands and operators stand."""
    tokens = _tokens(text)
    if not tokens:
        raise FormulaError("the formula is empty")

    def fail(i: int, expected: str) -> FormulaError:
        found = repr(tokens[i][1]) if i < len(tokens) else "the end"
        pos = tokens[i][2] if i < len(tokens) else len(text)
        return FormulaError(f"expected {expected} at position {pos} in {text!r}, found {found}")

    out: list[str] = []
    want_operand = True  # at the start and after an operator, '(' or ','
    calls: list[bool] = []  # one entry per open '(': True when it opens a call's arguments
    for i, (kind, token, pos) in enumerate(tokens):
        if token == "**":
            raise fail(i, _OPERAND + " (power is written '^')")
        if want_operand and kind == "name":
            if token not in FUNCTIONS and i + 1 < len(tokens) and tokens[i + 1][1] == "(":
                known = ", ".join(FUNCTIONS)
                raise FormulaError(f"unknown function {token!r} at position {pos}; known: {known}")
            out.append(_NAME_PREFIX + token)
            want_operand = token in FUNCTIONS
            if want_operand and (i + 1 == len(tokens) or tokens[i + 1][1] != "("):
                raise fail(i + 1, f"'(' after the function {token}")
        elif want_operand and kind == "number":
            number = float(token)  # re-spelt for Python: `08` is 8, `1.` is 1.0
            if not math.isfinite(number):
                raise FormulaError(f"the number {token} at position {pos} in {text!r} is too large")
            out.append(repr(number))
            want_operand = False
        elif want_operand and token in "+-":
            out.append(token)
        elif want_operand and token == "(":
            calls.append(i > 0 and tokens[i - 1][1] in FUNCTIONS and tokens[i - 1][0] == "name")
            out.append(token)
        elif want_operand and token == ")" and calls and calls[-1] and tokens[i - 1][1] == "(":
            out.append(token)  # `f()`: the tree check names the argument count
            calls.pop()
            want_operand = False
        elif want_operand:
            raise fail(i, _OPERAND)
        elif token in "+-*/^":
            out.append("**" if token == "^" else token)
            want_operand = True
        elif token == ")" and calls:
            out.append(token)
            calls.pop()
        elif token == "," and calls and calls[-1]:
            out.append(token)
            want_operand = True
        else:
            raise fail(i, "an operator or the end")
    if want_operand:
        raise fail(len(tokens), _OPERAND)
    if calls:
        raise fail(len(tokens), "')'")
    return " ".join(out)


_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
}

Env = Mapping[str, float]
Compiled = Callable[[Env], float]


def _divide(left: float, right: float) -> float:
    if right == 0:
        raise FormulaError("division by zero")
    return left / right


def _power(left: float, right: float) -> float:
    try:
        result = left**right  # floats: overflow raises at once, no huge integers
    except OverflowError:
        raise FormulaError(f"{left} ^ {right} is out of range") from None
    if isinstance(result, complex):
        raise FormulaError(f"{left} ^ {right} is not a real number")
    return result


def _variable(name: str) -> Compiled:
    def value(env: Env) -> float:
        if name not in env:
            raise FormulaError(f"unknown name {name!r}; known: {', '.join(sorted(env)) or 'none'}")
        return float(env[name])

    return value


def _call(name: str, args: list[Compiled]) -> Compiled:
    impl = FUNCTIONS[name].impl

    def value(env: Env) -> float:
        values = [arg(env) for arg in args]
        try:
            return float(impl(*values))
        except (ValueError, OverflowError, ZeroDivisionError) as exc:
            raise FormulaError(f"{name}({', '.join(map(repr, values))}): {exc}") from exc

    return value


def _compile(node: ast.AST, names: set[str], depth: int = 0) -> Compiled:
    """A closure for a whitelisted node; FormulaError for anything else."""
    if depth > MAX_DEPTH:
        raise FormulaError(f"the formula nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        number = float(node.value)
        return lambda env: number
    if isinstance(node, ast.Name) and node.id.startswith(_NAME_PREFIX):
        name = node.id.removeprefix(_NAME_PREFIX)
        names.add(name)
        return _variable(name)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _compile(node.operand, names, depth + 1)
        return operand if isinstance(node.op, ast.UAdd) else (lambda env: -operand(env))
    if isinstance(node, ast.BinOp):
        op = {ast.Div: _divide, ast.Pow: _power}.get(type(node.op)) or _BINARY.get(type(node.op))
        if op is not None:
            left, right = _compile(node.left, names, depth + 1), _compile(node.right, names, depth + 1)
            return lambda env: op(left(env), right(env))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name = node.func.id.removeprefix(_NAME_PREFIX)
        function = FUNCTIONS.get(name)
        if function is None:
            raise FormulaError(f"unknown function {name!r}; known: {', '.join(FUNCTIONS)}")
        count = len(node.args)
        if count < function.min_args or (function.max_args is not None and count > function.max_args):
            raise FormulaError(f"{name}() takes {function.arity()} argument(s), got {count}")
        return _call(name, [_compile(arg, names, depth + 1) for arg in node.args])
    raise FormulaError(f"{ast.unparse(node)!r} is not allowed in a formula")


@dataclass(frozen=True)
class Formula:
    """A parsed formula; evaluate it as often as needed."""

    text: str
    names: frozenset[str]
    _value: Compiled = field(repr=False, compare=False)

    def evaluate(self, env: Env) -> float:
        """The value for these names; FormulaError for math errors or a result that is not finite."""
        try:
            value = self._value(env)
        except (OverflowError, ZeroDivisionError) as exc:
            raise FormulaError(f"{self.text!r}: {exc}") from exc
        if not math.isfinite(value):
            raise FormulaError(f"{self.text!r} gave {value}, not a finite number")
        return value


def parse(text: str) -> Formula:
    """Parse a formula; FormulaError says what is wrong and where."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula is a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is {len(text)} characters long; at most {MAX_LENGTH} are accepted")
    source = _to_python(text)
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:  # the lexer's checks leave little to reach
        raise FormulaError(f"cannot parse {text!r}: {exc}") from None
    names: set[str] = set()
    value = _compile(tree.body, names)
    return Formula(text, frozenset(names), value)
