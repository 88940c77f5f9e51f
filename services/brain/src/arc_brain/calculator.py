"""Exact arithmetic and unit conversions, answered by rules before any LLM sees the turn.

A small local model cannot multiply or convert units reliably, so anything that is clearly a sum
or a supported conversion is computed here and said back as one short spoken sentence. Anything
else returns None and goes on to the other skills.

The parser never evaluates code: the utterance is lexed into numbers, operator words and
symbols, and a small recursive-descent parser builds a tree that is evaluated in floats, where
every step is constant time (a huge power overflows instead of growing a big integer) and the
input length and nesting are capped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

MAX_INPUT_CHARS = 200
MAX_DEPTH = 24  # nested parentheses and unary operators; far beyond anything said aloud
MAX_EXPONENT = 1000.0

DIVIDE_BY_ZERO = "You can't divide by zero."
TOO_BIG = "That number is too big for me to work out."
NO_REAL_ROOT = "Negative numbers don't have a real square root."
NO_REAL_ANSWER = "That has no answer in real numbers."
BELOW_ABSOLUTE_ZERO = "That's below absolute zero, so it isn't a real temperature."


@dataclass(frozen=True, slots=True)
class Calculation:
    expression: str  # what was computed, normalised: "3 hours in minutes", "12 * 7"
    answer: str  # the spoken answer: "3 hours is 180 minutes.", "12 times 7 is 84."


# --- spoken numbers ---------------------------------------------------------------------------


def _trim(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:.0f}"


def _spoken_number(value: float, decimals: int = 2) -> tuple[str, bool]:
    """A number as the TTS should read it, and whether it was rounded.

    Negative numbers say "minus" because a bare "-" is read inconsistently; huge ones become
    "1.27 times 10 to the power of 30" because a thirty-digit string is unlistenable.
    """
    if value == 0:
        return "0", False
    sign = "minus " if value < 0 else ""
    size = abs(value)
    if size >= 1e15:
        exponent = math.floor(math.log10(size))
        mantissa = round(size / 10**exponent, 2)
        if mantissa >= 10:  # rounding 9.999 up carries into the exponent
            mantissa, exponent = mantissa / 10, exponent + 1
        return f"{sign}{_trim(mantissa, 2)} times 10 to the power of {exponent}", True
    if size < 1e-6:
        return "nearly 0", True
    if size < 10**-decimals:
        # Rounding 0.001 to two decimals would say "0": keep two significant digits instead.
        decimals = -math.floor(math.log10(size)) + 1
    rounded = round(size, decimals)
    approximate = abs(rounded - size) > 1e-9 * max(1.0, size)
    return sign + _trim(rounded, decimals), approximate


def _say(value: float) -> str:
    text, approximate = _spoken_number(value)
    return f"about {text}" if approximate and not text.startswith("nearly") else text


def _plain(value: float) -> str:
    """A number for the `expression` field, which is read by people and logs, not spoken."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


# --- lexing -----------------------------------------------------------------------------------

_SMALL_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_SMALL = {word: index for index, word in enumerate(_SMALL_WORDS)}
_TENS_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_TENS = {word: 10 * (index + 2) for index, word in enumerate(_TENS_WORDS)}
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_MULTIPLIERS = {"hundred": 100.0, "dozen": 12.0}

_RAW = re.compile(
    r"\s*(?:(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"|(?P<sym>\*\*|[-+*/^()%√²³=])"
    r"|(?P<word>[a-z]+(?:'[a-z]+)?))"
)
_HYPHENATED = re.compile(rf"\b({'|'.join(_TENS)})-({'|'.join(list(_SMALL)[1:10])})\b")


def _raw_tokens(text: str) -> list[str] | None:
    text = _HYPHENATED.sub(r"\1 \2", text)
    tokens: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _RAW.match(text, position)
        if match is None:
            return None
        tokens.append(match.group(match.lastgroup or "word").replace(",", ""))
        position = match.end()
    return tokens


def _is_literal(token: str) -> bool:
    return token[0].isdigit() or token[0] == "."


def _read_number(tokens: list[str], start: int) -> tuple[float, int] | None:
    """A number said in digits or words at `start`: "12", "2.5 million", "a hundred and five",
    "two and a half", "three point one four", "half". Returns the value and the next index."""
    end = len(tokens)
    i = start
    if i >= end:
        return None
    first = tokens[i]
    if _is_literal(first):
        value = float(first)
        i += 1
        while i < end and tokens[i] in _SCALES | _MULTIPLIERS:
            value *= (_SCALES | _MULTIPLIERS)[tokens[i]]
            i += 1
        return _read_half(tokens, value, i)
    if first == "half":
        return 0.5, i + 1
    if first in ("a", "an", "one") and tokens[i + 1 : i + 2] == ["half"]:
        return 0.5, i + 2

    total = current = 0.0
    last = ""  # the kind of the previous word, to stop at "two three" or "twenty thirty"
    if first in ("a", "an"):
        # "a" is 1 only before a scale: "a hundred", "a million"; "a" alone is not a number.
        if i + 1 >= end or tokens[i + 1] not in _SCALES | _MULTIPLIERS:
            return None
        current, last, i = 1.0, "small", i + 1
    while i < end:
        word = tokens[i]
        if word in _SMALL:
            if last == "small" or (last == "tens" and _SMALL[word] >= 10):
                break
            current += _SMALL[word]
            last = "small"
        elif word in _TENS:
            if last in ("small", "tens"):
                break
            current += _TENS[word]
            last = "tens"
        elif word in _MULTIPLIERS:
            if last != "small":
                break
            current *= _MULTIPLIERS[word]
            last = "hundred"
        elif word in _SCALES:
            if last in ("", "scale"):
                break
            total += current * _SCALES[word]
            current = 0.0
            last = "scale"
        elif (
            word == "and"
            and last in ("hundred", "scale")
            and i + 1 < end
            and (tokens[i + 1] in _SMALL or tokens[i + 1] in _TENS)
        ):
            pass  # "one hundred and five"
        else:
            break
        i += 1
    if not last:
        return None
    value = total + current
    if tokens[i : i + 1] == ["point"]:
        digits = ""
        i += 1
        while i < end and tokens[i] in _SMALL and _SMALL[tokens[i]] < 10:
            digits += str(_SMALL[tokens[i]])
            i += 1
        if not digits:
            return None
        value += float("0." + digits)
    return _read_half(tokens, value, i)


def _read_half(tokens: list[str], value: float, i: int) -> tuple[float, int]:
    if tokens[i : i + 3] == ["and", "a", "half"]:
        return value + 0.5, i + 3
    return value, i


class _Token(NamedTuple):
    kind: str  # "num", an operator ("+", "-", "*", "/", "**", "%", "of", "neg") or a word op
    value: float = 0.0


_PHRASES: dict[tuple[str, ...], str] = {
    ("plus",): "+",
    ("add",): "+",
    ("minus",): "-",
    ("take", "away"): "-",
    ("negative",): "neg",
    ("times",): "*",
    ("x",): "*",
    ("multiplied", "by"): "*",
    ("divided", "by"): "/",
    ("over",): "/",
    ("to", "the", "power", "of"): "**",
    ("to", "the", "power"): "**",
    ("raised", "to", "the", "power", "of"): "**",
    ("raised", "to"): "**",
    ("squared",): "squared",
    ("cubed",): "cubed",
    ("the", "square", "root", "of"): "sqrt",
    ("square", "root", "of"): "sqrt",
    ("sqrt",): "sqrt",
    ("the", "cube", "root", "of"): "cbrt",
    ("cube", "root", "of"): "cbrt",
    ("half", "of"): "half of",
    ("percent",): "%",
    ("per", "cent"): "%",
    ("of",): "of",
}
_PHRASE_ORDER = sorted(_PHRASES, key=len, reverse=True)
_SYMBOLS = {"+": "+", "-": "-", "*": "*", "/": "/", "**": "**", "^": "**", "%": "%"}
_SYMBOLS |= {"(": "(", ")": ")", "√": "sqrt", "²": "squared", "³": "cubed"}


def _tokens(text: str) -> list[_Token] | None:
    raw = _raw_tokens(text)
    if not raw:
        return None
    tokens: list[_Token] = []
    i = 0
    while i < len(raw):
        if raw[i] in _SYMBOLS:
            tokens.append(_Token(_SYMBOLS[raw[i]]))
            i += 1
            continue
        phrase = next((p for p in _PHRASE_ORDER if tuple(raw[i : i + len(p)]) == p), None)
        if phrase is not None:
            tokens.append(_Token(_PHRASES[phrase]))
            i += len(phrase)
            continue
        number = _read_number(raw, i)
        if number is None:
            return None
        value, i = number
        if not math.isfinite(value):
            return None
        tokens.append(_Token("num", value))
    return tokens


# --- parsing ----------------------------------------------------------------------------------


class _Fail(Exception):
    """Not an expression this parser understands: the utterance is not arithmetic."""


class _MathError(Exception):
    """An expression whose answer is a polite refusal (division by zero, overflow)."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


@dataclass(frozen=True, slots=True)
class _Node:
    op: str  # "num", "neg", a binary op, "squared", "cubed", "%", "sqrt", "cbrt", "half of"
    value: float = 0.0
    left: _Node | None = None
    right: _Node | None = None


_BINARY_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "of": 2, "**": 4}


class _Parser:
    """expr := term (('+'|'-') term)*
    term := unary (('*'|'/') unary)*
    unary := ('-'|'+'|'neg'|'sqrt'|'cbrt'|'half of') unary | power
    power := postfix ('**' unary)?          right-associative, so 2 ** -1 parses
    postfix := primary ('squared'|'cubed'|'%' ('of' unary)?)*
    primary := num | '(' expr ')'
    """

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.depth = 0

    def parse(self) -> _Node:
        node = self.expr()
        if self.position != len(self.tokens):
            raise _Fail
        return node

    def peek(self) -> str | None:
        return self.tokens[self.position].kind if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        if self.position >= len(self.tokens):
            raise _Fail
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expr(self) -> _Node:
        return self._left_associative(("+", "-"), self.term)

    def term(self) -> _Node:
        return self._left_associative(("*", "/"), self.unary)

    def _left_associative(self, ops: tuple[str, ...], operand: Callable[[], _Node]) -> _Node:
        node = operand()
        while (op := self.peek()) in ops:
            self.take()
            node = _Node(op, left=node, right=operand())
        return node

    def unary(self) -> _Node:
        op = self.peek()
        if op not in ("-", "+", "neg", "sqrt", "cbrt", "half of"):
            return self.power()
        self.take()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Fail
        operand = self.unary()
        self.depth -= 1
        if op == "+":
            return operand
        return _Node("neg" if op in ("-", "neg") else op, left=operand)

    def power(self) -> _Node:
        node = self.postfix()
        if self.peek() == "**":
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _Fail
            node = _Node("**", left=node, right=self.unary())
            self.depth -= 1
        return node

    def postfix(self) -> _Node:
        node = self.primary()
        while (op := self.peek()) in ("squared", "cubed", "%"):
            self.take()
            if op == "%" and self.peek() == "of":
                self.take()
                node = _Node("of", left=node, right=self.unary())
            else:
                node = _Node(op, left=node)
        return node

    def primary(self) -> _Node:
        token = self.take()
        if token.kind == "num":
            return _Node("num", token.value)
        if token.kind != "(":
            raise _Fail
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Fail
        node = self.expr()
        self.depth -= 1
        if self.take().kind != ")":
            raise _Fail
        return node


# --- evaluation and rendering -----------------------------------------------------------------


def _child(node: _Node, side: str = "left") -> _Node:
    child = node.left if side == "left" else node.right
    if child is None:
        raise _Fail
    return child


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise _MathError(TOO_BIG)
    return value


def _evaluate(node: _Node) -> float:
    op = node.op
    if op == "num":
        return node.value
    a = _evaluate(_child(node))
    if op == "neg":
        return -a
    if op == "squared":
        return _finite(a * a)
    if op == "cubed":
        return _finite(a * a * a)
    if op == "%":
        return a / 100
    if op == "half of":
        return a / 2
    if op == "sqrt":
        if a < 0:
            raise _MathError(NO_REAL_ROOT)
        return math.sqrt(a)
    if op == "cbrt":
        return math.cbrt(a)
    b = _evaluate(_child(node, "right"))
    if op == "+":
        return _finite(a + b)
    if op == "-":
        return _finite(a - b)
    if op == "*":
        return _finite(a * b)
    if op == "of":
        return _finite(a / 100 * b)
    if op == "/":
        if b == 0:
            raise _MathError(DIVIDE_BY_ZERO)
        return _finite(a / b)
    if op == "**":
        return _power(a, b)
    raise _Fail


def _power(base: float, exponent: float) -> float:
    if base == 0 and exponent < 0:
        raise _MathError(DIVIDE_BY_ZERO)
    # The cap is belt and braces: float pow is constant time, but an explicit bound keeps the
    # guarantee obvious if this ever moves to exact integers.
    if abs(exponent) > MAX_EXPONENT and abs(base) not in (0.0, 1.0):
        raise _MathError(TOO_BIG)
    try:
        return _finite(math.pow(base, exponent))
    except OverflowError:
        raise _MathError(TOO_BIG) from None
    except ValueError:  # a negative base to a fractional power
        raise _MathError(NO_REAL_ANSWER) from None


def _symbolic(node: _Node) -> tuple[str, int]:
    """The expression with symbols, and its precedence, for minimal parentheses."""
    op = node.op
    if op == "num":
        return _plain(node.value), 9
    if op in ("sqrt", "cbrt"):
        return f"{op}({_symbolic(_child(node))[0]})", 9
    if op == "half of":
        return f"half of {_wrapped(_child(node), 3)}", 3
    if op == "neg":
        return f"-{_wrapped(_child(node), 3)}", 3
    if op in ("squared", "cubed"):
        return f"{_wrapped(_child(node), 5)} ** {2 if op == 'squared' else 3}", 4
    if op == "%":
        return f"{_wrapped(_child(node), 5)}%", 5
    precedence = _BINARY_PRECEDENCE[op]
    if op == "**":  # right-associative
        left = _wrapped(_child(node), precedence + 1)
        right = _wrapped(_child(node, "right"), precedence)
        return f"{left} ** {right}", precedence
    left = _wrapped(_child(node), precedence)
    right = _wrapped(_child(node, "right"), precedence + 1)
    symbol = "% of" if op == "of" else f" {op}"
    return f"{left}{symbol} {right}", precedence


def _wrapped(node: _Node, minimum: int) -> str:
    text, precedence = _symbolic(node)
    return f"({text})" if precedence < minimum else text


_WORDS = {
    "+": "plus",
    "-": "minus",
    "*": "times",
    "/": "divided by",
    "**": "to the power of",
    "of": "percent of",
}


def _operand(node: _Node) -> str | None:
    """A number said back exactly as given, or None when it is not a plain number."""
    if node.op == "neg" and node.left is not None and node.left.op == "num":
        value = -node.left.value
    elif node.op == "num":
        value = node.value
    else:
        return None
    text, approximate = _spoken_number(value, decimals=6)
    return None if approximate else text


def _spoken(node: _Node) -> str | None:
    """The sum said in words when it is one operation on plain numbers ("12 times 7");
    anything longer is not worth reading back, so the answer is just the result."""
    if node.op in _WORDS:
        left, right = _operand(_child(node)), _operand(_child(node, "right"))
        if left is None or right is None:
            return None
        return f"{left} {_WORDS[node.op]} {right}"
    if node.op in ("squared", "cubed", "%", "sqrt", "cbrt", "half of"):
        operand = _operand(_child(node))
        if operand is None:
            return None
        if node.op == "%":
            return f"{operand} percent"
        if node.op == "sqrt":
            return f"the square root of {operand}"
        if node.op == "cbrt":
            return f"the cube root of {operand}"
        if node.op == "half of":
            return f"half of {operand}"
        return f"{operand} {node.op}"
    return None


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _arithmetic(text: str) -> Calculation | None:
    tokens = _tokens(text)
    if not tokens or not any(t.kind != "num" for t in tokens):
        return None
    try:
        tree = _Parser(tokens).parse()
    except _Fail:
        return None
    if tree.op == "num" or (tree.op == "neg" and tree.left is not None and tree.left.op == "num"):
        return None  # a bare number is not a question worth answering as a sum
    expression = _symbolic(tree)[0]
    try:
        result = _evaluate(tree)
    except _MathError as error:
        return Calculation(expression, error.answer)
    spoken = _spoken(tree)
    if spoken is None:
        return Calculation(expression, f"The answer is {_say(result)}.")
    return Calculation(expression, _sentence(f"{spoken} is {_say(result)}"))


# --- unit conversions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Unit:
    singular: str
    plural: str
    dimension: str
    factor: float  # to the dimension's base unit (second, metre, gram, millilitre, m/s, kelvin)
    offset: float = 0.0  # temperatures only: base = value * factor + offset

    def name(self, spoken_value: str) -> str:
        return (
            self.singular
            if spoken_value.removeprefix("about ") in ("1", "minus 1")
            else self.plural
        )


def _spellings(*names: str) -> tuple[str, ...]:
    """British and US spellings of the same names."""
    variants = {name for name in names}
    variants |= {name.replace("metre", "meter").replace("litre", "liter") for name in names}
    variants |= {name.replace("gramme", "gram") for name in names}
    return tuple(variants)


_MILLI_METRE = _spellings("millimetre", "millimetres")
_CENTI_METRE = _spellings("centimetre", "centimetres")
_METRE = _spellings("metre", "metres")
_KILO_METRE = _spellings("kilometre", "kilometres")
_MILLI_GRAM = _spellings("milligram", "milligrams", "milligramme", "milligrammes")
_GRAM = _spellings("gram", "grams", "gramme", "grammes")
_KILO_GRAM = _spellings("kilogram", "kilograms", "kilogramme", "kilogrammes")
_FAHRENHEIT_OFFSET = 273.15 - 32 * 5 / 9

_UNIT_TABLE: list[tuple[_Unit, tuple[str, ...]]] = [
    (_Unit("millisecond", "milliseconds", "time", 0.001), ("millisecond", "milliseconds", "ms")),
    (_Unit("second", "seconds", "time", 1), ("second", "seconds", "sec", "secs", "s")),
    (_Unit("minute", "minutes", "time", 60), ("minute", "minutes", "min", "mins")),
    (_Unit("hour", "hours", "time", 3600), ("hour", "hours", "hr", "hrs", "h")),
    (_Unit("day", "days", "time", 86400), ("day", "days")),
    (_Unit("week", "weeks", "time", 604800), ("week", "weeks", "wk", "wks")),
    # A calendar year of 365 days: what people mean by "how many days in a year".
    (_Unit("year", "years", "time", 31536000), ("year", "years", "yr", "yrs")),
    (_Unit("millimetre", "millimetres", "length", 0.001), (*_MILLI_METRE, "mm")),
    (_Unit("centimetre", "centimetres", "length", 0.01), (*_CENTI_METRE, "cm")),
    (_Unit("metre", "metres", "length", 1), (*_METRE, "m")),
    (_Unit("kilometre", "kilometres", "length", 1000), (*_KILO_METRE, "km", "kms")),
    # "in" is deliberately not an alias of inch: it is the word that joins the two units.
    (_Unit("inch", "inches", "length", 0.0254), ("inch", "inches")),
    (_Unit("foot", "feet", "length", 0.3048), ("foot", "feet", "ft")),
    (_Unit("yard", "yards", "length", 0.9144), ("yard", "yards", "yd", "yds")),
    (_Unit("mile", "miles", "length", 1609.344), ("mile", "miles", "mi")),
    (_Unit("milligram", "milligrams", "mass", 0.001), (*_MILLI_GRAM, "mg")),
    (_Unit("gram", "grams", "mass", 1), (*_GRAM, "g")),
    (_Unit("kilogram", "kilograms", "mass", 1000), (*_KILO_GRAM, "kg", "kgs", "kilo", "kilos")),
    (_Unit("tonne", "tonnes", "mass", 1e6), ("tonne", "tonnes", "metric ton", "metric tons")),
    (_Unit("ounce", "ounces", "mass", 28.349523125), ("ounce", "ounces", "oz")),
    (_Unit("pound", "pounds", "mass", 453.59237), ("pound", "pounds", "lb", "lbs")),
    (_Unit("stone", "stone", "mass", 6350.29318), ("stone", "stones")),
    (
        _Unit("millilitre", "millilitres", "volume", 1),
        (*_spellings("millilitre", "millilitres"), "ml"),
    ),
    (_Unit("litre", "litres", "volume", 1000), (*_spellings("litre", "litres"), "l")),
    # Plain gallons, pints and quarts are taken as US ones, and said so in the answer.
    (
        _Unit("US gallon", "US gallons", "volume", 3785.411784),
        ("gallon", "gallons", "gal", "us gallon", "us gallons"),
    ),
    (
        _Unit("imperial gallon", "imperial gallons", "volume", 4546.09),
        ("imperial gallon", "imperial gallons", "uk gallon", "uk gallons"),
    ),
    (_Unit("US pint", "US pints", "volume", 473.176473), ("pint", "pints", "us pint", "us pints")),
    (
        _Unit("imperial pint", "imperial pints", "volume", 568.26125),
        ("imperial pint", "imperial pints", "uk pint", "uk pints"),
    ),
    (
        _Unit("US quart", "US quarts", "volume", 946.352946),
        ("quart", "quarts", "us quart", "us quarts"),
    ),
    (_Unit("cup", "cups", "volume", 236.5882365), ("cup", "cups", "us cup", "us cups")),
    (
        _Unit("fluid ounce", "fluid ounces", "volume", 29.5735295625),
        ("fluid ounce", "fluid ounces", "fl oz"),
    ),
    (
        _Unit("tablespoon", "tablespoons", "volume", 14.78676478125),
        ("tablespoon", "tablespoons", "tbsp"),
    ),
    (_Unit("teaspoon", "teaspoons", "volume", 4.92892159375), ("teaspoon", "teaspoons", "tsp")),
    (
        _Unit("kilometre per hour", "kilometres per hour", "speed", 1000 / 3600),
        ("km/h", "kmh", "kph", "kmph", "km/hr"),
    ),
    (_Unit("mile per hour", "miles per hour", "speed", 1609.344 / 3600), ("mph", "mi/h")),
    (_Unit("metre per second", "metres per second", "speed", 1), ("m/s",)),
    (_Unit("knot", "knots", "speed", 1852 / 3600), ("knot", "knots")),
    (
        _Unit("degree Celsius", "degrees Celsius", "temperature", 1, 273.15),
        ("celsius", "centigrade"),
    ),
    (
        _Unit("degree Fahrenheit", "degrees Fahrenheit", "temperature", 5 / 9, _FAHRENHEIT_OFFSET),
        ("fahrenheit",),
    ),
    (_Unit("kelvin", "kelvin", "temperature", 1), ("kelvin", "kelvins")),
]

_UNITS: dict[str, _Unit] = {alias: unit for unit, aliases in _UNIT_TABLE for alias in aliases}
# Spoken speeds: "kilometres per hour", "miles an hour", "metres a second".
for _speed, _lengths, _times in (
    (_UNITS["km/h"], (*_spellings("kilometre", "kilometres"), "km"), ("hour", "h", "hr")),
    (_UNITS["mph"], ("mile", "miles"), ("hour", "h", "hr")),
    (_UNITS["m/s"], (*_spellings("metre", "metres"), "m"), ("second", "s", "sec")),
):
    for _length in _lengths:
        for _time in _times:
            for _joint in (" per ", " an ", " a ", "/"):
                _UNITS[f"{_length}{_joint}{_time}"] = _speed
# Only after "degrees" or "°": a bare "c" or "f" is too easily something else.
_TEMPERATURE_LETTERS = {"c": _UNITS["celsius"], "f": _UNITS["fahrenheit"]}
_DEGREES = re.compile(r"^(?:degrees?\s+|°\s*)")


def _unit(text: str) -> _Unit | None:
    text = text.strip()
    degrees = _DEGREES.match(text)
    if degrees:
        text = text[degrees.end() :]
    unit = _UNITS.get(text) or (_TEMPERATURE_LETTERS.get(text) if degrees else None)
    if unit is None or (degrees and unit.dimension != "temperature"):
        return None
    return unit


def _amount(words: list[str]) -> float | None:
    """The amount before a unit: "3", "three and a half", "a", "half an", "minus 40"."""
    sign = 1.0
    if words and words[0] in ("minus", "negative", "-"):
        sign, words = -1.0, words[1:]
    if words in (["a"], ["an"]):
        return sign
    if words in (["half", "a"], ["half", "an"]):
        return sign * 0.5
    raw = _raw_tokens(" ".join(words))
    if not raw:
        return None
    if raw[0] == "-" and sign > 0:
        sign, raw = -1.0, raw[1:]
    number = _read_number(raw, 0)
    if number is None or number[1] != len(raw) or not math.isfinite(number[0]):
        return None
    return sign * number[0]


def _quantity(text: str) -> tuple[float, _Unit] | None:
    """ "3 hours", "2.5km", "thirty degrees celsius", "a day" → amount and unit."""
    text = re.sub(r"(\d)([a-z°])", r"\1 \2", text)
    words = text.split()
    for split in range(1, len(words)):
        unit = _unit(" ".join(words[split:]))
        if unit is None:
            continue
        amount = _amount(words[:split])
        if amount is not None:
            return amount, unit
    return None


_HOW_MANY = re.compile(
    r"^how many (?P<to>.+?)\s+(?:(?:are|is)\s+(?:there\s+)?(?:in\s+)?|there are in\s+|in\s+"
    r"|make\s+|makes\s+)(?P<from>.+)$"
)
_CONVERT = re.compile(r"^(?:convert\s+)?(?P<from>.+?)\s+(?:in|to|into|in to|as)\s+(?P<to>.+)$")


def _conversion(text: str) -> Calculation | None:
    match = _HOW_MANY.match(text) or _CONVERT.match(text)
    if match is None:
        return None
    target = _unit(match.group("to"))
    quantity = _quantity(match.group("from"))
    if target is None or quantity is None:
        return None
    amount, source = quantity
    amount_text = _spoken_number(amount, decimals=6)[0]
    expression = f"{amount_text} {source.name(amount_text)} in {target.plural}"
    if source.dimension != target.dimension:
        return Calculation(
            expression,
            f"I can't convert {source.plural} to {target.plural}: they measure different things.",
        )
    base = amount * source.factor + source.offset
    if source.dimension == "temperature" and base < -1e-9:
        return Calculation(expression, BELOW_ABSOLUTE_ZERO)
    result = (base - target.offset) / target.factor
    result_text = _say(result)
    answer = f"{amount_text} {source.name(amount_text)} is {result_text} {target.name(result_text)}"
    return Calculation(expression, _sentence(answer))


# --- entry point ------------------------------------------------------------------------------

_LEADING = [
    re.compile(r"^(?:hey\s+|ok\s+|okay\s+)?arc\b[,:]?\s*"),
    re.compile(r"^(?:please|so|and|um|uh|well|ok|okay)\b,?\s*"),
    re.compile(
        r"^(?:can|could|would|will) you (?:please )?"
        r"(?:tell me |work out |calculate |compute |figure out |say )?"
    ),
    re.compile(r"^(?:do you know|tell me|i want to know|i'd like to know|i need to know)\s+"),
]
_STEM = re.compile(
    r"^(?:what(?:'s| is| are| would be| will be| does| do)?|whats|how much(?:'s| is| are| does| do)"
    r"|calculate|compute|work out|figure out|evaluate|solve)\s+"
)
_TRAILING = re.compile(
    r"(?:\s+(?:equal to|equals?|make|makes|come to|comes to|give you|is|are)|\s*=|,?\s*please)$"
)


def _normalise(text: str) -> str:
    text = text.strip().lower()
    # Curly apostrophes, the minus sign, the en dash, and the multiplication and division signs.
    text = text.translate(str.maketrans("\u2019\u2212\u2013\u00d7\u00f7", "'--*/"))
    text = re.sub(r",(?!\d{3}\b)", " ", text)  # keep thousands separators, drop pauses
    text = re.sub(r"\s+", " ", text)
    text = text.rstrip("?.! ")
    stripped = None
    while stripped != text:
        stripped = text
        for pattern in _LEADING:
            text = pattern.sub("", text, count=1)
    text = _STEM.sub("", text, count=1)
    return _TRAILING.sub("", text).strip()


def calculate(text: str) -> Calculation | None:
    """The exact answer to a sum or a unit conversion, or None when `text` is neither."""
    if len(text) > MAX_INPUT_CHARS:
        return None
    normalised = _normalise(text)
    if not normalised:
        return None
    return _conversion(normalised) or _arithmetic(normalised)
