"""Exact arithmetic and unit conversions, said back as short spoken sentences."""

from __future__ import annotations

import re
import time

import pytest
from arc_brain.calculator import Calculation, calculate

pytestmark = pytest.mark.unit

# Symbols a TTS reads badly or not at all; spoken answers must say them in words.
UNSPEAKABLE = re.compile(r"[*/%$^=()]|\d\.\d{3,}|\d-|-\d")


@pytest.mark.parametrize(
    ("text", "expression", "answer"),
    [
        # arithmetic
        ("what is 12 times 7", "12 * 7", "12 times 7 is 84."),
        ("what's two plus two?", "2 + 2", "2 plus 2 is 4."),
        ("how much is 100 divided by 8", "100 / 8", "100 divided by 8 is 12.5."),
        ("15 minus 20", "15 - 20", "15 minus 20 is minus 5."),
        ("what is 15 percent of 80", "15% of 80", "15 percent of 80 is 12."),
        ("what's the square root of 144", "sqrt(144)", "The square root of 144 is 12."),
        ("7 squared", "7 ** 2", "7 squared is 49."),
        ("2 to the power of 10", "2 ** 10", "2 to the power of 10 is 1024."),
        ("12*7", "12 * 7", "12 times 7 is 84."),
        ("(3+4)*2", "(3 + 4) * 2", "The answer is 14."),
        ("what is 10 divided by 3", "10 / 3", "10 divided by 3 is about 3.33."),
        ("what is 1 divided by 1000", "1 / 1000", "1 divided by 1000 is 0.001."),
        ("What is 0.1 plus 0.2?", "0.1 + 0.2", "0.1 plus 0.2 is 0.3."),
        ("three point five times 2", "3.5 * 2", "3.5 times 2 is 7."),
        ("what's a hundred and five times two", "105 * 2", "105 times 2 is 210."),
        ("what is twenty-five times four", "25 * 4", "25 times 4 is 100."),
        ("what is 1,000,000 times 3", "1000000 * 3", "1000000 times 3 is 3000000."),
        ("what is minus 5 plus 3", "-5 + 3", "Minus 5 plus 3 is minus 2."),
        ("what's 10 minus minus 5", "10 - -5", "10 minus minus 5 is 15."),
        ("what's 5 x 5", "5 * 5", "5 times 5 is 25."),
        ("what is 2 ^ 8", "2 ** 8", "2 to the power of 8 is 256."),
        ("what's 3 cubed", "3 ** 3", "3 cubed is 27."),
        ("the cube root of 27", "cbrt(27)", "The cube root of 27 is 3."),
        ("what is half of 10", "half of 10", "Half of 10 is 5."),
        ("what does 2 plus 2 equal", "2 + 2", "2 plus 2 is 4."),
        ("can you tell me what 6 times 7 is", "6 * 7", "6 times 7 is 42."),
        ("what is 2 ** 0.5", "2 ** 0.5", "2 to the power of 0.5 is about 1.41."),
        (
            "what is 2 to the power of 60",
            "2 ** 60",
            "2 to the power of 60 is about 1.15 times 10 to the power of 18.",
        ),
        # unit conversions
        (
            "how many minutes are in three hours?",
            "3 hours in minutes",
            "3 hours is 180 minutes.",
        ),
        ("how many seconds in a day", "1 day in seconds", "1 day is 86400 seconds."),
        (
            "convert 5 kilometers to miles",
            "5 kilometres in miles",
            "5 kilometres is about 3.11 miles.",
        ),
        ("how many feet is 3 meters", "3 metres in feet", "3 metres is about 9.84 feet."),
        (
            "what is 30 degrees celsius in fahrenheit",
            "30 degrees Celsius in degrees Fahrenheit",
            "30 degrees Celsius is 86 degrees Fahrenheit.",
        ),
        ("how many grams in 2 pounds", "2 pounds in grams", "2 pounds is about 907.18 grams."),
        ("how many days are in 3 weeks", "3 weeks in days", "3 weeks is 21 days."),
        ("what's 3 hours in minutes", "3 hours in minutes", "3 hours is 180 minutes."),
        (
            "how many minutes in half an hour",
            "0.5 hours in minutes",
            "0.5 hours is 30 minutes.",
        ),
        (
            "2 and a half hours in minutes",
            "2.5 hours in minutes",
            "2.5 hours is 150 minutes.",
        ),
        (
            "how many km is 10 miles",
            "10 miles in kilometres",
            "10 miles is about 16.09 kilometres.",
        ),
        (
            "how many centimetres in an inch",
            "1 inch in centimetres",
            "1 inch is 2.54 centimetres.",
        ),
        ("how many ounces in a pound", "1 pound in ounces", "1 pound is 16 ounces."),
        ("how many days in a year", "1 year in days", "1 year is 365 days."),
        (
            "how many seconds are there in a week",
            "1 week in seconds",
            "1 week is 604800 seconds.",
        ),
        ("how many cups in a litre", "1 litre in cups", "1 litre is about 4.23 cups."),
        (
            "10 liters in gallons",
            "10 litres in US gallons",
            "10 litres is about 2.64 US gallons.",
        ),
        (
            "100 km/h in mph",
            "100 kilometres per hour in miles per hour",
            "100 kilometres per hour is about 62.14 miles per hour.",
        ),
        (
            "100 kilometres per hour to miles per hour",
            "100 kilometres per hour in miles per hour",
            "100 kilometres per hour is about 62.14 miles per hour.",
        ),
        (
            "what is 72 fahrenheit in celsius",
            "72 degrees Fahrenheit in degrees Celsius",
            "72 degrees Fahrenheit is about 22.22 degrees Celsius.",
        ),
        (
            "minus 40 fahrenheit in celsius",
            "minus 40 degrees Fahrenheit in degrees Celsius",
            "Minus 40 degrees Fahrenheit is minus 40 degrees Celsius.",
        ),
        (
            "300 kelvin in celsius",
            "300 kelvin in degrees Celsius",
            "300 kelvin is 26.85 degrees Celsius.",
        ),
        ("2.5kg in pounds", "2.5 kilograms in pounds", "2.5 kilograms is about 5.51 pounds."),
        (
            "how many metres per second is 36 km/h",
            "36 kilometres per hour in metres per second",
            "36 kilometres per hour is 10 metres per second.",
        ),
    ],
)
def test_arithmetic_and_conversions(text: str, expression: str, answer: str) -> None:
    assert calculate(text) == Calculation(expression, answer)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("1/0", "You can't divide by zero."),
        ("what is 5 divided by zero", "You can't divide by zero."),
        ("0 ** -1", "You can't divide by zero."),
        ("square root of -4", "Negative numbers don't have a real square root."),
        ("(-8) ** (1/3)", "That has no answer in real numbers."),
        ("9**9**9**9", "That number is too big for me to work out."),
        ("2 to the power of 5000", "That number is too big for me to work out."),
        (
            "-300 celsius in kelvin",
            "That's below absolute zero, so it isn't a real temperature.",
        ),
        (
            "how many grams in 2 hours",
            "I can't convert hours to grams: they measure different things.",
        ),
    ],
)
def test_polite_refusals(text: str, answer: str) -> None:
    result = calculate(text)
    assert result is not None and result.answer == answer


@pytest.mark.parametrize(
    "text",
    [
        "what is the capital of France",
        "how many people live in Paris",
        "tell me a joke",
        "what time is it",
        "remember that my car is blue",
        "how are you",
        "what's the weather like tomorrow?",
        "how much is Apple stock",
        "how much is 5 dollars in euros",
        "what is 5",
        "what is -5",
        "what is a times 3",
        "what is 5 degrees in fahrenheit",
        "what is the square root",
        "2 plus",
        "",
        "   ",
        # Hostile input: code, exponent notation, deep nesting, and sheer length.
        "__import__('os')",
        "__import__('os').system('ls')",
        "what is 1e308 times 10",
        "(" * 60 + "1" + ")" * 60,
        "1+" * 5000 + "1",
        "9" * 10_000,
        "x" * 10_000,
    ],
)
def test_not_arithmetic(text: str) -> None:
    assert calculate(text) is None


@pytest.mark.parametrize(
    "text", ["9**9**9**9", "2**2**2**2**2**2**2**2", "9" * 10_000, "((((" * 2500, "9^" * 99 + "9"]
)
def test_hostile_input_returns_quickly(text: str) -> None:
    started = time.perf_counter()
    calculate(text)
    assert time.perf_counter() - started < 1.0  # generous: CI cores may be busy


@pytest.mark.parametrize(
    "text",
    [
        "what is 10 divided by 3",
        "15 minus 20",
        "what is 15 percent of 80",
        "(3+4)*2",
        "2 to the power of 60",
        "convert 5 kilometers to miles",
        "minus 40 fahrenheit in celsius",
        "100 km/h in mph",
        "1/0",
    ],
)
def test_answers_are_speakable(text: str) -> None:
    result = calculate(text)
    assert result is not None
    assert not UNSPEAKABLE.search(result.answer), result.answer
