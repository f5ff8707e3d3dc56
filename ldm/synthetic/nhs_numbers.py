"""NHS numbers from the 999 test range, valid by Modulus 11, and the ways they get mangled."""

from __future__ import annotations

import numpy as np

WEIGHTS = np.arange(10, 1, -1)  # weights of the first nine digits in the Modulus 11 check
TEST_RANGE_PREFIX = 999_000_000  # 999 000 000x: numbers reserved for testing, never issued


def digits_of(numbers: np.ndarray, width: int) -> np.ndarray:
    """Split integers into a (n, width) array of decimal digits, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (numbers[:, None] // powers) % 10


def check_digit(first_nine: np.ndarray) -> np.ndarray:
    """Modulus 11 check digit for nine-digit stems; 10 means the stem cannot be used."""
    remainder = (digits_of(first_nine, 9) * WEIGHTS).sum(axis=1) % 11
    return np.where(remainder == 0, 0, 11 - remainder)


def unique_valid(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` distinct valid NHS numbers from the 999 test range, in random order."""
    stems = np.arange(1_000_000, dtype=np.int64) + TEST_RANGE_PREFIX
    check = check_digit(stems)
    numbers = stems[check != 10] * 10 + check[check != 10]
    if len(numbers) < count:
        raise ValueError(f"the test range holds {len(numbers):,} valid NHS numbers, not {count:,}")
    return rng.permutation(numbers)[:count]


TEST_RANGE_SIZE = 909_091  # valid numbers in 999 000 000x .. 999 999 999x (stems with check 10 excluded)


def with_wrong_check_digit(numbers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace the last digit by a different one (1-9 added modulo 10), so the check fails."""
    # A stem has exactly one valid check digit, so any other last digit fails the check.
    wrong = (numbers % 10 + rng.integers(1, 10, size=len(numbers))) % 10
    return numbers - numbers % 10 + wrong


def with_transposed_digits(numbers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Swap one pair of adjacent, different digits (a keying slip that Modulus 11 detects)."""
    digits = digits_of(numbers, 10)
    rows = np.arange(len(numbers))
    position = rng.integers(3, 9, size=len(numbers))  # keep the 999 prefix recognisable
    for _ in range(6):  # move on to the next pair where the two digits are equal
        same = digits[rows, position] == digits[rows, position + 1]
        position = np.where(same, 3 + (position - 2) % 6, position)
    left, right = digits[rows, position].copy(), digits[rows, position + 1].copy()
    digits[rows, position], digits[rows, position + 1] = right, left
    return (digits * 10 ** np.arange(9, -1, -1, dtype=np.int64)).sum(axis=1)
