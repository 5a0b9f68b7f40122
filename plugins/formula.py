"""The `calculate_output` language of `multi` graders, parsed by a Pratt parser (never `eval`).

Grammar: numbers (`1`, `0.5`, `.5`, `1e-3`), names (the child graders' keys), `( )`, the binary
operators `+ - * / ^` (`^` is power and right-associative, and binds tighter than a unary minus:
`-2^2` is -4) and the functions `min max abs floor ceil exp sqrt log` (`min`/`max` take one or
more arguments, `log` one or two: `log(x)` is natural, `log(x, b)` base b, the rest one).

`parse(text) -> Formula`; `formula.names` is the set of names it uses and
`formula.evaluate({name: value})` the number. Both raise `FormulaError` with a message that
points at the problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)|(?P<op>[-+*/^(),]))"
)


class FormulaError(ValueError):
    """A formula that cannot be parsed or evaluated."""


@dataclass(frozen=True)
class _Function:
    impl: Callable[..., float]
    min_args: int
    max_args: int | None


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

# Binding powers: (left, right). Right-associative `^` has right < left.
_BINARY: dict[str, tuple[int, int]] = {
    "+": (10, 11),
    "-": (10, 11),
    "*": (20, 21),
    "/": (20, 21),
    "^": (41, 40),
}
_UNARY_POWER = 30


@dataclass(frozen=True)
class _Token:
    kind: str  # number | name | op | end
    text: str
    pos: int


def tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise FormulaError(f"unexpected character {text[start]!r} at position {start} in {text!r}")
        kind = match.lastgroup or "op"
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# Node types: ("num", value) | ("var", name) | ("neg", node) | ("bin", op, left, right) | ("call", fn, args)
Node = tuple


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def next(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, token: _Token, expected: str) -> FormulaError:
        found = "the end" if token.kind == "end" else repr(token.text)
        return FormulaError(f"expected {expected} at position {token.pos} in {self.text!r}, found {found}")

    def expect(self, text: str) -> None:
        token = self.next()
        if token.kind != "op" or token.text != text:
            raise self.fail(token, repr(text))

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise FormulaError("the formula is empty")
        node = self.expression(0)
        if self.peek().kind != "end":
            raise self.fail(self.peek(), "an operator or the end")
        return node

    def expression(self, min_power: int) -> Node:
        left = self.prefix()
        while True:
            token = self.peek()
            if token.kind != "op" or token.text not in _BINARY:
                return left
            left_power, right_power = _BINARY[token.text]
            if left_power < min_power:
                return left
            self.next()
            left = ("bin", token.text, left, self.expression(right_power))

    def prefix(self) -> Node:
        token = self.next()
        if token.kind == "number":
            return ("num", float(token.text))
        if token.kind == "name":
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.call(token)
            if token.text in FUNCTIONS:
                raise self.fail(self.peek(), f"'(' after the function {token.text}")
            return ("var", token.text)
        if token.kind == "op" and token.text in "+-":
            operand = self.expression(_UNARY_POWER)
            return ("neg", operand) if token.text == "-" else operand
        if token.kind == "op" and token.text == "(":
            node = self.expression(0)
            self.expect(")")
            return node
        raise self.fail(token, "a number, a name, a function or '('")

    def call(self, name: _Token) -> Node:
        function = FUNCTIONS.get(name.text)
        if function is None:
            known = ", ".join(FUNCTIONS)
            raise FormulaError(f"unknown function {name.text!r} at position {name.pos}; known: {known}")
        self.expect("(")
        args: list[Node] = []
        if not (self.peek().kind == "op" and self.peek().text == ")"):
            args.append(self.expression(0))
            while self.peek().kind == "op" and self.peek().text == ",":
                self.next()
                args.append(self.expression(0))
        self.expect(")")
        too_many = function.max_args is not None and len(args) > function.max_args
        if len(args) < function.min_args or too_many:
            wanted = (
                f"{function.min_args}"
                if function.min_args == function.max_args
                else f"{function.min_args} to {function.max_args}"
                if function.max_args
                else f"at least {function.min_args}"
            )
            raise FormulaError(f"{name.text}() takes {wanted} argument(s), got {len(args)}")
        return ("call", name.text, tuple(args))


def _names(node: Node) -> set[str]:
    kind = node[0]
    if kind == "var":
        return {node[1]}
    if kind == "neg":
        return _names(node[1])
    if kind == "bin":
        return _names(node[2]) | _names(node[3])
    if kind == "call":
        return set().union(*(_names(arg) for arg in node[2]))
    return set()


def _apply(op: str, left: float, right: float) -> float:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        if right == 0:
            raise FormulaError("division by zero")
        return left / right
    result = left**right
    if isinstance(result, complex):
        raise FormulaError(f"{left} ^ {right} is not a real number")
    return result


def _evaluate(node: Node, env: Mapping[str, float]) -> float:
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "var":
        if node[1] not in env:
            raise FormulaError(f"unknown name {node[1]!r}; known: {', '.join(sorted(env)) or 'none'}")
        return float(env[node[1]])
    if kind == "neg":
        return -_evaluate(node[1], env)
    if kind == "bin":
        return _apply(node[1], _evaluate(node[2], env), _evaluate(node[3], env))
    args = [_evaluate(arg, env) for arg in node[2]]
    try:
        return float(FUNCTIONS[node[1]].impl(*args))
    except (ValueError, OverflowError, ZeroDivisionError) as exc:
        raise FormulaError(f"{node[1]}({', '.join(map(repr, args))}): {exc}") from exc


@dataclass(frozen=True)
class Formula:
    """A parsed formula; evaluate it as often as needed."""

    text: str
    tree: Node

    @property
    def names(self) -> set[str]:
        return _names(self.tree)

    def evaluate(self, env: Mapping[str, float]) -> float:
        """The value for these names; FormulaError for math errors or a result that is not finite."""
        try:
            value = _evaluate(self.tree, env)
        except (OverflowError, ZeroDivisionError) as exc:
            raise FormulaError(f"{self.text!r}: {exc}") from exc
        if not math.isfinite(value):
            raise FormulaError(f"{self.text!r} gave {value}, not a finite number")
        return value


def parse(text: str) -> Formula:
    """Parse a formula; FormulaError says where it went wrong."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula is a string, got {type(text).__name__}")
    return Formula(text, _Parser(text).parse())
