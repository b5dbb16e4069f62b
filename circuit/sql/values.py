"""Value semantics of the SQL engine: SQLite's, applied to JSON values.

The engine compiles every SQL expression into Python closures that call these
functions once per row, so SQLite (the oracle the conformance tests run) must
agree with them exactly, and the common cases (two ints, two strings, an int and
a float) are tested first, without allocating.

The value model. A value is what a record holds: ``None`` (SQL NULL), ``bool``,
``int``, ``float``, ``str``, ``list`` or ``dict``. SQLite is loaded with the same
data as: a bool as the integer 1 or 0, a list or dict as its canonical JSON text
(:func:`canonical_json`), every column without a declared type (so no type
affinity ever converts anything). Hence, everywhere here:

- a bool *is* the integer 1 or 0 (``True`` is accepted wherever ``1`` is);
- a list or dict *is* its canonical JSON text: it compares, concatenates,
  matches LIKE and has a LENGTH as that text, and so sorts after every number;
- integers are 64-bit: integer arithmetic that overflows becomes float, as in
  SQLite;
- a float result that is NaN (``inf - inf``) is NULL, as in SQLite.

Predicates (:func:`eq`, :func:`lt`, LIKE matchers, :func:`in_list`, ...) return
``True``/``False``/``None``: the SQL integers 1/0 and NULL of three-valued
logic. The logical connectives :func:`and_`, :func:`or_`, :func:`not_` return
the integers 1/0 or ``None``, like SQLite does; a caller that outputs a
predicate's value as a column should do the same (``int(b)``), since JSON would
otherwise show ``true`` where SQLite shows ``1``.

Reals are parsed from text and printed as text by replaying SQLite 3.40's own
algorithms in x86-64 ``long double`` arithmetic (emulated exactly with
integers), since neither is correctly rounded and SQLite must agree to the last
digit. Printing takes a correctly rounded shortcut where it provably agrees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import orjson

from ..errors import ReplayError, SqlError

Value = None | bool | int | float | str | list[Any] | dict[str, Any]
"""A JSON value read from a record, or the result of an expression."""

Predicate = Callable[[Value], bool | None]
"""A compiled one-argument SQL predicate (three-valued)."""

_MAX_INT = 2**63 - 1
_MIN_INT = -(2**63)
_TWO_63 = 2**63
# SQLite stops accumulating significand digits once it reaches this value.
_ATOF_DIGIT_LIMIT = (_MAX_INT - 9) // 10
_NUL = "\x00"

# ---------------------------------------------------------------------------
# Canonical JSON and JSON equality
# ---------------------------------------------------------------------------


def canonical_json(v: Value) -> str:
    """The canonical JSON text of *v*: keys sorted, no spaces, non-ASCII as is.

    This is the text a list or dict stands for in SQL, and the form of member
    ids (SPEC 3.3). orjson refuses nesting deeper than 254 levels while the log
    may carry up to 1000, so deeper values take an iterative encoder that
    formats every scalar with orjson too, keeping the two byte-identical.
    """
    try:
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return _canonical_json_deep(v)


def _canonical_json_deep(v: Value) -> str:
    """:func:`canonical_json` without recursion, for values nested too deep for orjson."""
    out: list[str] = []
    # Each entry is (is_literal_text, payload): literal punctuation or a value to encode.
    stack: list[tuple[bool, Any]] = [(False, v)]
    while stack:
        literal, item = stack.pop()
        if literal:
            out.append(item)
            continue
        kind = type(item)
        if kind is list:
            stack.append((True, "]"))
            for i in range(len(item) - 1, -1, -1):
                stack.append((False, item[i]))
                if i:
                    stack.append((True, ","))
            stack.append((True, "["))
        elif kind is dict:
            keys = sorted(item)
            stack.append((True, "}"))
            for i in range(len(keys) - 1, -1, -1):
                stack.append((False, item[keys[i]]))
                stack.append((True, orjson.dumps(keys[i]).decode() + ":"))
                if i:
                    stack.append((True, ","))
            stack.append((True, "{"))
        else:
            out.append(orjson.dumps(item).decode())
    return "".join(out)


def json_equal(a: Value, b: Value) -> bool:
    """Equality of two JSON values for no-op detection (SPEC 3.1).

    Dict key order does not matter, numbers compare numerically (``3 == 3.0``),
    a boolean never equals a number (``True != 1``, unlike Python's ``==``),
    lists compare elementwise. Iterative, so 1000-level nesting is fine.
    """
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        tx = type(x)
        ty = type(y)
        if tx is ty:
            if tx is dict:
                if len(x) != len(y):  # type: ignore[arg-type]
                    return False
                for key, xv in x.items():  # type: ignore[union-attr]
                    if key not in y:  # type: ignore[operator]
                        return False
                    stack.append((xv, y[key]))  # type: ignore[index]
            elif tx is list:
                if len(x) != len(y):  # type: ignore[arg-type]
                    return False
                stack.extend(zip(x, y, strict=True))  # type: ignore[arg-type]
            elif x != y:
                return False
        elif (tx is int or tx is float) and (ty is int or ty is float):
            if x != y:
                return False
        else:
            return False
    return True


# ---------------------------------------------------------------------------
# Text <-> number conversions (SQLite's sqlite3AtoF, sqlite3Atoi64, printf)
# ---------------------------------------------------------------------------

# SQLite parses and formats reals with C ``long double`` arithmetic, which on
# x86-64 has a 64-bit significand; replaying it exactly is what makes the rare
# cases agree to the last digit. A long double here is an exact pair (m, e)
# meaning m * 2**e with m < 2**64 (always nonnegative: callers keep the sign).
_LongDouble = tuple[int, int]
_LD_BITS = 64


def _ld_round(m: int, e: int) -> _LongDouble:
    """The long double nearest to m * 2**e (ties to even)."""
    extra = m.bit_length() - _LD_BITS
    if extra <= 0:
        return m, e
    q = m >> extra
    rem = m & ((1 << extra) - 1)
    half = 1 << (extra - 1)
    if rem > half or (rem == half and q & 1):
        q += 1
        if q >> _LD_BITS:
            q >>= 1
            extra += 1
    return q, e + extra


def _ld(r: float) -> _LongDouble:
    """A double as a long double (exact)."""
    num, den = r.as_integer_ratio()
    return num, 1 - den.bit_length()


def _ld_mul(a: _LongDouble, b: _LongDouble) -> _LongDouble:
    return _ld_round(a[0] * b[0], a[1] + b[1])


def _ld_div(a: _LongDouble, b: _LongDouble) -> _LongDouble:
    shift = max(0, _LD_BITS + 2 + b[0].bit_length() - a[0].bit_length())
    q, rem = divmod(a[0] << shift, b[0])
    if rem:  # a sticky bit below the kept ones rounds exactly like the true quotient
        q = (q << 1) | 1
        shift += 1
    return _ld_round(q, a[1] - b[1] - shift)


def _ld_aligned(a: _LongDouble, b: _LongDouble) -> tuple[int, int, int]:
    """Both significands at a common exponent, and that exponent."""
    e = min(a[1], b[1])
    return a[0] << (a[1] - e), b[0] << (b[1] - e), e


def _ld_add(a: _LongDouble, b: _LongDouble) -> _LongDouble:
    x, y, e = _ld_aligned(a, b)
    return _ld_round(x + y, e)


def _ld_double(a: _LongDouble) -> float:
    """A long double rounded to the nearest double (Python's int division rounds exactly)."""
    m, e = a
    try:
        return float(m << e) if e >= 0 else m / (1 << -e)
    except OverflowError:
        return math.inf


def _ld_pow10(e: int) -> _LongDouble:
    """SQLite's ``sqlite3Pow10``: 10**e by squaring, rounding each product to long double."""
    x = _TEN
    r = _ONE
    while True:
        if e & 1:
            r = _ld_mul(r, x)
        e >>= 1
        if e == 0:
            return r
        x = _ld_mul(x, x)


def _ld_ge(a: _LongDouble, b: _LongDouble) -> bool:
    x, y, _ = _ld_aligned(a, b)
    return x >= y


_E100 = _ld(1e100)
_E10 = _ld(1e10)
_E8 = _ld(1e8)
_E_8 = _ld(1e-8)
_TEN = _ld(10.0)
_ONE = _ld(1.0)
_TENTH = _ld(0.1)
_ROUNDER = _ld(5.0e-05 * 1.0e-10)  # arRound[14 % 10] * 1e-10, computed in double


# Each part is optional and the parts start with disjoint characters, so this
# anchored match never backtracks more than a character.
_ATOF_RE = re.compile(
    r"[\t\n\v\f\r ]*([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?)([0-9]*))?[\t\n\v\f\r ]*"
)
_ATOI_RE = re.compile(r"[\t\n\v\f\r ]*([+-]?)(0*)([0-9]*)[\t\n\v\f\r ]*")


def _atof(text: str) -> tuple[float, int]:
    """SQLite's ``sqlite3AtoF``: the real value of *text*'s numeric prefix, and its kind.

    The kind is SQLite's return code: 1 for a whole string that is an integer,
    2 or 3 for a whole string with a decimal point and/or exponent, -1 for a
    prefix that has a decimal point or exponent followed by junk, 0 otherwise
    (junk after an integer prefix, or no digits at all).
    """
    m = _ATOF_RE.match(text)
    assert m is not None  # every group is optional
    sign, int_digits, frac_digits, exp_sign, exp_digits = m.groups()
    e_type = 1 + (frac_digits is not None) + (exp_digits is not None)
    e_valid = exp_digits is None or exp_digits != ""
    frac_digits = frac_digits or ""
    if len(int_digits) + len(frac_digits) <= 18:
        n_digit = len(int_digits) + len(frac_digits)
        s = int(int_digits + frac_digits) if n_digit else 0
        d = -len(frac_digits)
    else:
        s, d, n_digit = _atof_significand(int_digits, frac_digits)
    if m.end() == len(text) and n_digit > 0 and e_valid:
        rc = e_type
    elif e_type >= 2 and (e_type == 3 or e_valid) and n_digit > 0:
        rc = -1
    else:
        rc = 0
    if s == 0:
        return (-0.0 if sign == "-" else 0.0), rc
    e = min(int(exp_digits), 100_000) if exp_digits else 0
    if exp_sign == "-":
        e = -e
    e += d
    value = _atof_scale(s, e)
    return (-value if sign == "-" else value), rc


def _atof_scale(s: int, e: int) -> float:
    """``s * 10**e`` computed the way SQLite 3.40's ``sqlite3AtoF`` does (s > 0).

    Trade factors of ten between exponent and significand while that stays
    exact, then multiply or divide by ``sqlite3Pow10`` in long double and round
    to a double; exponents beyond 307 take a second step by 1e308 in double.
    Not correctly rounded, and that is the point: ``'7e-261' + 0`` must give
    SQLite's ``7.0000000000000005e-261``.
    """
    negative_exp = e < 0
    e = abs(e)
    while e > 0:
        if negative_exp:
            if s % 10:
                break
            s //= 10
        else:
            if s >= _MAX_INT // 10:
                break
            s *= 10
        e -= 1
    if e == 0:
        return float(s)
    if e > 307:
        if e >= 342:
            return 0.0 if negative_exp else math.inf
        scale = _ld_pow10(e - 308)
        if negative_exp:
            return _ld_double(_ld_div((s, 0), scale)) / 1.0e308
        return _ld_double(_ld_mul((s, 0), scale)) * 1.0e308
    scale = _ld_pow10(e)
    return _ld_double(_ld_div((s, 0), scale) if negative_exp else _ld_mul((s, 0), scale))


def _atof_significand(int_digits: str, frac_digits: str) -> tuple[int, int, int]:
    """The significand, decimal shift and digit count SQLite keeps from a long number."""
    s = d = n_digit = 0
    for i, ch in enumerate(int_digits):
        s = s * 10 + ord(ch) - 48
        n_digit += 1
        if s >= _ATOF_DIGIT_LIMIT:
            d += len(int_digits) - i - 1
            break
    for ch in frac_digits:
        if s < _ATOF_DIGIT_LIMIT:
            s = s * 10 + ord(ch) - 48
            d -= 1
            n_digit += 1
    return s, d, n_digit


def _atoi64(text: str) -> tuple[int, int]:
    """SQLite's ``sqlite3Atoi64``: the integer prefix of *text*, clamped to 64 bits.

    The code is 0 for a whole-string integer, 1 for junk after it, -1 for no
    digits, 2 for overflow and 3 for exactly ``9223372036854775808``.
    """
    m = _ATOI_RE.match(text)
    assert m is not None
    sign, zeros, digits = m.groups()
    if not zeros and not digits:
        rc = -1
    elif m.end() < len(text):
        rc = 1
    else:
        rc = 0
    neg = sign == "-"
    if len(digits) < 19:
        value = int(digits) if digits else 0
        return (-value if neg else value), rc
    value = int(digits) if len(digits) == 19 else _TWO_63 + 1
    if value < _TWO_63:
        return (-value if neg else value), rc
    if value == _TWO_63 and neg:
        return _MIN_INT, rc
    return (_MIN_INT if neg else _MAX_INT), (3 if value == _TWO_63 else 2)


def _text_number(text: str) -> int | float:
    """The number SQLite's arithmetic sees in *text* (``computeNumericType``).

    An integer when the text is an integer (possibly followed by junk) that
    fits in 64 bits, else the real value of its numeric prefix: ``'12abc'`` is
    12, ``'abc'`` is 0, ``'2.0'`` is 2.0, ``'1.5e3x'`` is 1500.0.
    """
    if text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    real, rc = _atof(text)
    if rc <= 0:
        if rc == 0:
            ix, irc = _atoi64(text)
            if irc <= 1:
                return ix
        return real
    if rc == 1:
        ix, irc = _atoi64(text)
        if irc == 0:
            return ix
    return real


def _number(v: Value) -> int | float:
    """The number *v* stands for in arithmetic (never NULL: callers check first)."""
    kind = type(v)
    if kind is int or kind is float:
        return v  # type: ignore[return-value]
    if kind is bool:
        return int(v)  # type: ignore[arg-type]
    if kind is str:
        return _text_number(v)  # type: ignore[arg-type]
    # A list or dict is text starting with '[' or '{': no numeric prefix.
    return 0


def _real_value(v: Value) -> float:
    """SQLite's ``sqlite3VdbeRealValue``: *v* as a C double (text by its numeric prefix)."""
    kind = type(v)
    if kind is float:
        return v  # type: ignore[return-value]
    if kind is int or kind is bool:
        return float(v)  # type: ignore[arg-type]
    if kind is str:
        return _atof(v)[0]  # type: ignore[arg-type]
    return 0.0


def _int_value(v: Value) -> int:
    """SQLite's ``sqlite3VdbeIntValue``: reals truncate (clamped), text by integer prefix."""
    kind = type(v)
    if kind is int:
        return v  # type: ignore[return-value]
    if kind is float:
        r: float = v  # type: ignore[assignment]
        if r <= -9.223372036854775808e18:
            return _MIN_INT
        if r >= 9.223372036854775808e18:
            return _MAX_INT
        return int(r)
    if kind is bool:
        return int(v)  # type: ignore[arg-type]
    if kind is str:
        return _atoi64(v)[0]  # type: ignore[arg-type]
    return 0


def float_text(r: float) -> str:
    """A REAL as SQLite prints it (``printf("%!.15g")``): ``1.0``, ``0.1``, ``1.0e+20``.

    Fifteen significant digits, trailing zeros dropped but at least one digit
    after the point; ``-0.0`` prints as ``0.0``; infinities as ``Inf``/``-Inf``.
    SQLite computes the digits in ``long double`` rather than rounding exactly,
    which differs from C's correctly rounded ``%.15g`` only when the digits
    after the 15th are close to a half. So the common cases use ``%.15g``: a
    float whose shortest form has at most 15 digits (0.1, 2.5, 1e20), or whose
    16th to 18th digits are far from 500 (SQLite's error is below 0.1 unit of
    the 15th digit); the rest replay SQLite's algorithm exactly
    (:func:`_sqlite_printf_g15`).
    """
    if r == 0.0:
        return "0.0"
    text = f"{r:.15g}"
    if text[-1] == "f":
        return "Inf" if r > 0 else "-Inf"
    if float(text) != r:
        tail = int(f"{abs(r):.17e}"[16:19])
        if 400 <= tail <= 600:
            return _sqlite_printf_g15(r)
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            return f"{mantissa}.0e{exponent}"
        return text
    return text if "." in text else text + ".0"


def _sqlite_printf_g15(r: float) -> str:
    """SQLite 3.40's ``%!.15g`` for a finite nonzero double, step by step in long double.

    A transcription of the etGENERIC branch of ``sqlite3_str_vappendf``: scale
    into [1, 10), add the rounder, then peel digits off as ``et_getdigit`` does.
    """
    prefix = "-" if r < 0 else ""
    value = _ld(abs(r))
    precision = 14
    exp = 0
    scale = _ONE
    for step, size in ((_E100, 100), (_E10, 10), (_TEN, 1)):
        while _ld_ge(value, _ld_mul(step, scale)) and exp <= 350:
            scale = _ld_mul(scale, step)
            exp += size
    value = _ld_div(value, scale)
    while not _ld_ge(value, _E_8):
        value = _ld_mul(value, _E8)
        exp -= 8
    while not _ld_ge(value, _ONE):
        value = _ld_mul(value, _TEN)
        exp -= 1
    if exp > 350:
        return prefix + "Inf"
    value = _ld_add(value, _ROUNDER)
    if _ld_ge(value, _TEN):
        value = _ld_mul(value, _TENTH)
        exp += 1
    exponential = exp < -4 or exp > precision
    if exponential:
        e2 = 0
    else:
        precision -= exp
        e2 = exp

    def digit() -> str:
        nonlocal value
        m, e = value
        d = m >> -e if e < 0 else m << e
        # value - d is exact (it only drops high bits); then times ten, rounded.
        value = _ld_mul(_ld_round(m - (d << -e) if e < 0 else 0, min(e, 0)), _TEN)
        return chr(48 + d)

    out = [prefix]
    if e2 < 0:
        out.append("0")
    else:
        out.extend(digit() for _ in range(e2 + 1))
    out.append(".")
    zeros = max(0, -e2 - 1)
    out.append("0" * zeros)
    out.extend(digit() for _ in range(precision - zeros))
    text = "".join(out).rstrip("0")
    if text.endswith("."):
        text += "0"
    if exponential:
        text += f"e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return text


def to_text(v: Value) -> str | None:
    """*v* as SQLite converts it to TEXT (``CAST(v AS TEXT)``, ``v || ''``); NULL stays NULL."""
    kind = type(v)
    if kind is str:
        return v  # type: ignore[return-value]
    if kind is int:
        return str(v)
    if v is None:
        return None
    if kind is float:
        return float_text(v)  # type: ignore[arg-type]
    if kind is bool:
        return "1" if v else "0"
    return canonical_json(v)


def _text_of(v: Value) -> str:
    """:func:`to_text` for a value known not to be NULL."""
    kind = type(v)
    if kind is str:
        return v  # type: ignore[return-value]
    if kind is int:
        return str(v)
    if kind is float:
        return float_text(v)  # type: ignore[arg-type]
    if kind is bool:
        return "1" if v else "0"
    return canonical_json(v)


# ---------------------------------------------------------------------------
# Comparison and ordering
# ---------------------------------------------------------------------------

_NULL_KEY = (0, 0)


def sort_key(v: Value) -> tuple[int, Any]:
    """A Python-comparable key for SQLite's total order: NULL, then numbers, then text.

    ``(0, 0)`` for NULL, ``(1, number)`` for numbers (ints and floats compare
    exactly in Python, as in SQLite), ``(2, text)`` for text and for lists and
    dicts (their canonical JSON). Equal keys are equal SQL values, and for two
    non-NULL values ``sort_key(a) < sort_key(b)`` exactly when ``a < b`` in SQL.
    """
    kind = type(v)
    if kind is str:
        return (2, v)
    if kind is int or kind is float:
        return (1, v)
    if v is None:
        return _NULL_KEY
    if kind is bool:
        return (1, int(v))  # type: ignore[arg-type]
    return (2, canonical_json(v))


def compare(a: Value, b: Value) -> int | None:
    """-1, 0 or 1 as *a* sorts before, with or after *b*; None when either is NULL."""
    kind = type(a)
    if kind is type(b) and (kind is int or kind is str or kind is float):
        return (a > b) - (a < b)  # type: ignore[operator]
    if a is None or b is None:
        return None
    ka = sort_key(a)
    kb = sort_key(b)
    return (ka > kb) - (ka < kb)


def eq(a: Value, b: Value) -> bool | None:
    """SQL ``a = b``: NULL when either side is NULL."""
    kind = type(a)
    if kind is type(b) and (kind is int or kind is str or kind is float):
        return a == b
    if a is None or b is None:
        return None
    return sort_key(a) == sort_key(b)


def ne(a: Value, b: Value) -> bool | None:
    """SQL ``a <> b``."""
    kind = type(a)
    if kind is type(b) and (kind is int or kind is str or kind is float):
        return a != b
    if a is None or b is None:
        return None
    return sort_key(a) != sort_key(b)


def lt(a: Value, b: Value) -> bool | None:
    """SQL ``a < b``."""
    kind = type(a)
    if kind is type(b) and (kind is int or kind is str or kind is float):
        return a < b  # type: ignore[operator]
    if a is None or b is None:
        return None
    return sort_key(a) < sort_key(b)


def le(a: Value, b: Value) -> bool | None:
    """SQL ``a <= b``."""
    kind = type(a)
    if kind is type(b) and (kind is int or kind is str or kind is float):
        return a <= b  # type: ignore[operator]
    if a is None or b is None:
        return None
    return sort_key(a) <= sort_key(b)


def gt(a: Value, b: Value) -> bool | None:
    """SQL ``a > b``."""
    kind = type(a)
    if kind is type(b) and (kind is int or kind is str or kind is float):
        return a > b  # type: ignore[operator]
    if a is None or b is None:
        return None
    return sort_key(a) > sort_key(b)


def ge(a: Value, b: Value) -> bool | None:
    """SQL ``a >= b``."""
    kind = type(a)
    if kind is type(b) and (kind is int or kind is str or kind is float):
        return a >= b  # type: ignore[operator]
    if a is None or b is None:
        return None
    return sort_key(a) >= sort_key(b)


class DescText:
    """A string that sorts in reverse: the text part of a descending sort key.

    Numbers go descending by negation; text has no negation, so it is wrapped.
    Tuples compare elements with ``==`` before ``<``, so both are defined.
    (Measured against the alternative, a tuple of negated code points, building
    a wrapper is O(1) and compares slower only by a Python-level call.)
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DescText) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __lt__(self, other: DescText) -> bool:
        return other.text < self.text

    def __le__(self, other: DescText) -> bool:
        return other.text <= self.text

    def __gt__(self, other: DescText) -> bool:
        return other.text > self.text

    def __ge__(self, other: DescText) -> bool:
        return other.text >= self.text

    def __repr__(self) -> str:
        return f"DescText({self.text!r})"


def _asc_part(nulls_rank: int) -> Callable[[Value], tuple[int, Any]]:
    """The key of one ascending ORDER BY term: NULL at *nulls_rank* (0 first, 3 last)."""
    null_key = (nulls_rank, 0)

    def part(v: Value) -> tuple[int, Any]:
        kind = type(v)
        if kind is str:
            return (2, v)
        if kind is int or kind is float:
            return (1, v)
        if v is None:
            return null_key
        if kind is bool:
            return (1, int(v))  # type: ignore[arg-type]
        return (2, canonical_json(v))

    return part


def _desc_part(nulls_rank: int) -> Callable[[Value], tuple[int, Any]]:
    """The key of one descending ORDER BY term: text first (reversed), then numbers negated."""
    null_key = (nulls_rank, 0)

    def part(v: Value) -> tuple[int, Any]:
        kind = type(v)
        if kind is str:
            return (1, DescText(v))  # type: ignore[arg-type]
        if kind is int or kind is float:
            return (2, -v)  # type: ignore[operator]
        if v is None:
            return null_key
        if kind is bool:
            return (2, -int(v))  # type: ignore[arg-type]
        return (1, DescText(canonical_json(v)))

    return part


def make_order_key(
    descending: Sequence[bool], nulls_first: Sequence[bool | None] | None = None
) -> Callable[[Sequence[Value]], tuple[Any, ...]]:
    """Compile ORDER BY terms into a function from a row's sort values to a sort key.

    ``descending[i]`` is True for ``DESC``; ``nulls_first[i]`` is True for
    ``NULLS FIRST``, False for ``NULLS LAST`` and None for SQLite's default
    (first ascending, last descending). The key is a tuple of one
    ``(rank, payload)`` pair per term, so keys of different rows compare with
    plain tuple comparison and values of different kinds are never compared
    with each other. The planner appends the row key for ties.
    """
    if nulls_first is None:
        nulls_first = [None] * len(descending)
    parts = []
    for desc, first in zip(descending, nulls_first, strict=True):
        nulls_at_start = (not desc) if first is None else first
        rank = 0 if nulls_at_start else 3
        parts.append(_desc_part(rank) if desc else _asc_part(rank))
    if len(parts) == 1:
        only = parts[0]
        return lambda values: (only(values[0]),)
    if len(parts) == 2:
        first_part, second_part = parts
        return lambda values: (first_part(values[0]), second_part(values[1]))
    funcs = tuple(parts)
    return lambda values: tuple([f(v) for f, v in zip(funcs, values, strict=True)])


def order_key(
    values: Sequence[Value], descending: Sequence[bool], nulls_first: Sequence[bool | None]
) -> tuple[Any, ...]:
    """One-off :func:`make_order_key`; compile once with that function on hot paths."""
    return make_order_key(descending, nulls_first)(values)


# ---------------------------------------------------------------------------
# Truth and three-valued logic
# ---------------------------------------------------------------------------


def truth(v: Value) -> bool | None:
    """SQLite's truth value of *v*: None for NULL, else whether its number is nonzero.

    Text counts by its numeric prefix as a real (``'1abc'`` and ``'0.5'`` and
    ``' 2'`` are true, ``'abc'`` and ``'1e-400'`` false); a list or dict, being
    text that starts with a bracket, is always false.
    """
    kind = type(v)
    if kind is int or kind is bool or kind is float:
        return v != 0
    if v is None:
        return None
    if kind is str:
        return _atof(v)[0] != 0.0  # type: ignore[arg-type]
    return False


def is_true(v: Value) -> bool:
    """Whether a WHERE/HAVING/ON condition with value *v* keeps the row (NULL does not).

    Conditions are mostly predicates, so ``True``/``False``/``None`` come first.
    """
    if v is True:
        return True
    if v is False or v is None:
        return False
    kind = type(v)
    if kind is int or kind is float:
        return v != 0
    if kind is str:
        return _atof(v)[0] != 0.0  # type: ignore[arg-type]
    return False


def and_(a: Value, b: Value) -> int | None:
    """SQL ``a AND b``: 0 if either is false, else NULL if either is NULL, else 1."""
    ta = truth(a)
    tb = truth(b)
    if ta is False or tb is False:
        return 0
    if ta is None or tb is None:
        return None
    return 1


def or_(a: Value, b: Value) -> int | None:
    """SQL ``a OR b``: 1 if either is true, else NULL if either is NULL, else 0."""
    ta = truth(a)
    tb = truth(b)
    if ta or tb:
        return 1
    if ta is None or tb is None:
        return None
    return 0


def not_(a: Value) -> int | None:
    """SQL ``NOT a``."""
    t = truth(a)
    if t is None:
        return None
    return 0 if t else 1


def between(v: Value, lo: Value, hi: Value) -> bool | None:
    """SQL ``v BETWEEN lo AND hi``, i.e. ``v >= lo AND v <= hi`` three-valued."""
    low = ge(v, lo)
    if low is False:
        return False
    high = le(v, hi)
    if high is False:
        return False
    if low is None or high is None:
        return None
    return True


def _in_key(v: Value) -> Any:
    """A hashable key equal for exactly the SQL-equal non-NULL values."""
    kind = type(v)
    if kind is list or kind is dict:
        return canonical_json(v)
    if kind is bool:
        return int(v)  # type: ignore[arg-type]
    return v


def in_list(v: Value, values: Sequence[Value]) -> bool | None:
    """SQL ``v IN (values...)``: true on a match, else NULL if *v* or any item is NULL.

    ``v IN ()`` is false even for a NULL *v*, as in SQLite.
    """
    if not values:
        return False
    if v is None:
        return None
    saw_null = False
    for item in values:
        if item is None:
            saw_null = True
        elif eq(v, item):
            return True
    return None if saw_null else False


def compile_in_list(values: Sequence[Value]) -> Predicate:
    """A matcher for ``x IN (constants...)``: one hash lookup per row."""
    if not values:
        return lambda v: False
    keys = frozenset(_in_key(x) for x in values if x is not None)
    miss: bool | None = None if any(x is None for x in values) else False

    def match(v: Value) -> bool | None:
        if v is None:
            return None
        kind = type(v)
        if kind is list or kind is dict or kind is bool:
            v = _in_key(v)
        return True if v in keys else miss

    return match


# ---------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------


def _real_result(r: float) -> float | None:
    """A REAL result: NaN (``inf - inf``, ``0 * inf``) is NULL in SQLite."""
    return None if r != r else r


def _numbers(a: Value, b: Value) -> tuple[int | float, int | float] | None:
    """Both operands as numbers, or None when either is NULL."""
    if a is None or b is None:
        return None
    return _number(a), _number(b)


def add(a: Value, b: Value) -> int | float | None:
    """SQL ``a + b``: integers stay integers unless the sum overflows 64 bits."""
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        r: int = a + b  # type: ignore[operator,assignment]
        if _MIN_INT <= r <= _MAX_INT:
            return r
        return float(a) + float(b)  # type: ignore[arg-type]
    if ta is float and tb is float:
        return _real_result(a + b)  # type: ignore[operator,arg-type]
    nums = _numbers(a, b)
    if nums is None:
        return None
    x, y = nums
    if type(x) is int and type(y) is int:
        r = x + y
        if _MIN_INT <= r <= _MAX_INT:
            return r
    return _real_result(_real_value(a) + _real_value(b))


def sub(a: Value, b: Value) -> int | float | None:
    """SQL ``a - b``."""
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        r: int = a - b  # type: ignore[operator,assignment]
        if _MIN_INT <= r <= _MAX_INT:
            return r
        return float(a) - float(b)  # type: ignore[arg-type]
    if ta is float and tb is float:
        return _real_result(a - b)  # type: ignore[operator,arg-type]
    nums = _numbers(a, b)
    if nums is None:
        return None
    x, y = nums
    if type(x) is int and type(y) is int:
        r = x - y
        if _MIN_INT <= r <= _MAX_INT:
            return r
    return _real_result(_real_value(a) - _real_value(b))


def mul(a: Value, b: Value) -> int | float | None:
    """SQL ``a * b``."""
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        r: int = a * b  # type: ignore[operator,assignment]
        if _MIN_INT <= r <= _MAX_INT:
            return r
        return float(a) * float(b)  # type: ignore[arg-type]
    if ta is float and tb is float:
        return _real_result(a * b)  # type: ignore[operator,arg-type]
    nums = _numbers(a, b)
    if nums is None:
        return None
    x, y = nums
    if type(x) is int and type(y) is int:
        r = x * y
        if _MIN_INT <= r <= _MAX_INT:
            return r
    return _real_result(_real_value(a) * _real_value(b))


def div(a: Value, b: Value) -> int | float | None:
    """SQL ``a / b``: integers divide truncating toward zero; dividing by zero is NULL."""
    nums = _numbers(a, b)
    if nums is None:
        return None
    x, y = nums
    if type(x) is int and type(y) is int:
        if y == 0:
            return None
        if y != -1 or x != _MIN_INT:
            q = abs(x) // abs(y)
            return -q if (x < 0) != (y < 0) else q
    divisor = _real_value(b)
    if divisor == 0.0:
        return None
    return _real_result(_real_value(a) / divisor)


def mod(a: Value, b: Value) -> int | float | None:
    """SQL ``a % b``: the remainder of the operands truncated to integers.

    The remainder has the dividend's sign (C's ``%``); modulo zero is NULL. When
    either operand is real (a float, or text that reads as real) SQLite truncates
    both to integers (text by its integer prefix: ``'1.5e3'`` is 1) and returns
    the remainder as a REAL.
    """
    nums = _numbers(a, b)
    if nums is None:
        return None
    x, y = nums
    real = not (type(x) is int and type(y) is int)
    if real:
        x = _int_value(a)
        y = _int_value(b)
    if y == 0:
        return None
    r = abs(x) % abs(y)  # type: ignore[arg-type]
    if x < 0:
        r = -r
    return float(r) if real else r


def neg(a: Value) -> int | float | None:
    """SQL unary ``-a``, which SQLite computes as ``0 - a`` (so ``-0.0`` is ``0.0``)."""
    return sub(0, a)


# ---------------------------------------------------------------------------
# Text functions
# ---------------------------------------------------------------------------

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as SQLite's built-in ``lower()`` and LIKE do."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def concat(a: Value, b: Value) -> str | None:
    """SQL ``a || b``: both sides as text; NULL if either is NULL."""
    if type(a) is str and type(b) is str:
        return a + b  # type: ignore[operator]
    if a is None or b is None:
        return None
    return _text_of(a) + _text_of(b)


def lower(v: Value) -> str | None:
    """SQL ``LOWER(v)``: ASCII letters only (SQLite's built-in, without ICU)."""
    if v is None:
        return None
    return ascii_lower(_text_of(v))


def upper(v: Value) -> str | None:
    """SQL ``UPPER(v)``: ASCII letters only."""
    if v is None:
        return None
    text = _text_of(v)
    return text.upper() if text.isascii() else text.translate(_ASCII_UPPER)


def length(v: Value) -> int | None:
    """SQL ``LENGTH(v)``: characters of text before the first NUL; a number's text length."""
    kind = type(v)
    if kind is str:
        nul = v.find(_NUL)  # type: ignore[union-attr]
        return len(v) if nul < 0 else nul  # type: ignore[arg-type]
    if v is None:
        return None
    text = _text_of(v)
    if kind is list or kind is dict:
        nul = text.find(_NUL)
        return len(text) if nul < 0 else nul
    return len(text)


def abs_(v: Value) -> int | float | None:
    """SQL ``ABS(v)``: integers stay integers; anything else is read as a real.

    ``ABS(-9223372036854775808)`` is an error in SQLite ("integer overflow"), so
    it raises :class:`ReplayError` here; the caller adds the location.
    """
    kind = type(v)
    if kind is int:
        if v == _MIN_INT:
            raise ReplayError("integer overflow in ABS(-9223372036854775808)")
        return v if v >= 0 else -v  # type: ignore[operator,return-value]
    if v is None:
        return None
    if kind is bool:
        return int(v)  # type: ignore[arg-type]
    r = _real_value(v)
    return -r if r < 0 else r


def coalesce(*args: Value) -> Value:
    """SQL ``COALESCE(...)``: the first argument that is not NULL."""
    for v in args:
        if v is not None:
            return v
    return None


# ---------------------------------------------------------------------------
# LIKE, without regular expressions
# ---------------------------------------------------------------------------


class _Segment:
    """A run of a LIKE pattern between two ``%``: literal characters and ``_`` holes.

    ``runs`` are the maximal literal pieces with their offsets. Finding the
    leftmost place a segment matches uses ``str.find`` on its longest run and
    checks the other runs there, so a search costs at most
    O(len(text) * len(segment)) and never backtracks.
    """

    __slots__ = ("anchor", "anchor_offset", "runs", "size")

    def __init__(self, runs: list[tuple[int, str]], size: int) -> None:
        self.runs = runs
        self.size = size
        if runs:
            self.anchor_offset, self.anchor = max(runs, key=lambda run: len(run[1]))
        else:
            self.anchor_offset, self.anchor = 0, ""

    def matches_at(self, text: str, pos: int) -> bool:
        """Whether the segment matches *text* at *pos* (the caller checks it fits)."""
        for off, lit in self.runs:  # noqa: SIM110 - a loop beats all(genexpr) per row
            if not text.startswith(lit, pos + off):
                return False
        return True

    def find(self, text: str, start: int, end: int) -> int:
        """The leftmost position in [start, end - size] where the segment matches, or -1."""
        if start + self.size > end:
            return -1
        if not self.runs:
            return start
        off = self.anchor_offset
        tail = self.size - off - len(self.anchor)
        while True:
            hit = text.find(self.anchor, start + off, end - tail)
            if hit < 0:
                return -1
            pos = hit - off
            if self.matches_at(text, pos):
                return pos
            start = pos + 1


def _parse_like(pattern: str, escape: str | None, fold: bool) -> list[_Segment] | None:
    """Split a LIKE pattern at its ``%`` into segments; None if it can match nothing.

    The escape character takes precedence over the wildcards (``ESCAPE '%'``
    makes ``%`` an escape, no longer a wildcard), and a pattern ending in a lone
    escape never matches, as in SQLite. With *fold*, literal characters are
    folded after escapes are resolved, so an escape letter keeps its case.
    """
    segments: list[_Segment] = []
    runs: list[tuple[int, str]] = []
    literal: list[str] = []
    size = 0
    i = 0
    n = len(pattern)

    def flush_literal() -> None:
        if literal:
            text = "".join(literal)
            runs.append((size - len(text), ascii_lower(text) if fold else text))
            literal.clear()

    while i < n:
        ch = pattern[i]
        i += 1
        if ch == escape:
            if i >= n:
                return None
            literal.append(pattern[i])
            i += 1
            size += 1
        elif ch == "%":
            flush_literal()
            segments.append(_Segment(runs, size))
            runs = []
            size = 0
        elif ch == "_":
            flush_literal()
            size += 1
        else:
            literal.append(ch)
            size += 1
    flush_literal()
    segments.append(_Segment(runs, size))
    return segments


def _match_segments(segments: list[_Segment], text: str) -> bool:
    """Whether *text* matches the segments: first anchored at the start, last at the end.

    Middle segments take their leftmost match: with fixed-length segments the
    leftmost placement leaves the most room for the rest, so greedy is exact.
    """
    first = segments[0]
    n = len(text)
    if len(segments) == 1:
        return n == first.size and first.matches_at(text, 0)
    last = segments[-1]
    if first.size + last.size > n:
        return False
    if not first.matches_at(text, 0) or not last.matches_at(text, n - last.size):
        return False
    pos = first.size
    end = n - last.size
    for seg in segments[1:-1]:
        found = seg.find(text, pos, end)
        if found < 0:
            return False
        pos = found + seg.size
    return True


def _before_nul(text: str) -> str:
    """*text* up to its first NUL: SQLite's LIKE reads both operands as C strings."""
    nul = text.find(_NUL)
    return text if nul < 0 else text[:nul]


@lru_cache(maxsize=256)
def compile_like(
    pattern: str | None, case_sensitive: bool = True, escape: str | None = None
) -> Predicate:
    """Compile ``value LIKE pattern [ESCAPE escape]`` for a constant pattern.

    ``case_sensitive=False`` is ILIKE (SQLite's LIKE default): ASCII letters
    fold, other characters do not. The matcher returns None for a NULL value,
    and reads a non-text value as its text. A NULL pattern matches nothing
    (every row gives NULL). Raises :class:`SqlError` when *escape* is not one
    character. Patterns of the common shapes (``abc``, ``abc%``, ``%abc``,
    ``%abc%``) get matchers built on one string method.
    """
    if escape is not None and len(escape) != 1:
        raise SqlError("ESCAPE expression must be a single character")
    if pattern is None:
        return lambda v: None
    segments = _parse_like(_before_nul(pattern), escape, not case_sensitive)
    if segments is None:
        return lambda v: None if v is None else False
    shape = _like_shape(segments)
    if case_sensitive and shape is not None:
        return _shape_matcher(*shape)
    if shape is not None:
        test = _shape_test(*shape)
    else:
        test = lambda text: _match_segments(segments, _before_nul(text))  # noqa: E731
    fold = not case_sensitive

    def match(v: Value) -> bool | None:
        if type(v) is not str:
            if v is None:
                return None
            v = _text_of(v)
        return test(ascii_lower(v) if fold else v)  # type: ignore[arg-type]

    return match


def _like_shape(segments: list[_Segment]) -> tuple[str, str] | None:
    """``(shape, literal)`` for a wildcard-free pattern of a common shape, else None.

    Shapes: ``exact`` (``abc``), ``prefix`` (``abc%``), ``suffix`` (``%abc``),
    ``contains`` (``%abc%``). ``_`` anywhere, or more ``%``, is the general case.
    """
    if any(len(seg.runs[0][1] if seg.runs else "") != seg.size for seg in segments):
        return None
    lits = [seg.runs[0][1] if seg.runs else "" for seg in segments]
    if len(lits) == 1:
        return "exact", lits[0]
    if len(lits) == 2 and not lits[1]:
        return "prefix", lits[0]
    if len(lits) == 2 and not lits[0]:
        return "suffix", lits[1]
    if len(lits) == 3 and not lits[0] and not lits[2]:
        return "contains", lits[1]
    return None


def _shape_test(shape: str, lit: str) -> Callable[[str], bool]:
    """The test of a common-shape pattern on text (cut at its first NUL where that matters)."""
    if shape == "exact":
        return lambda text: text == lit or (_NUL in text and _before_nul(text) == lit)
    if shape == "prefix":
        return lambda text: text.startswith(lit)
    if shape == "suffix":
        return lambda text: (text if _NUL not in text else _before_nul(text)).endswith(lit)
    return lambda text: lit in text and (_NUL not in text or lit in _before_nul(text))


def _shape_matcher(shape: str, lit: str) -> Predicate:
    """A case-sensitive matcher for a common-shape pattern: one call per row for text."""
    test = _shape_test(shape, lit)
    if shape == "prefix":

        def match(v: Value) -> bool | None:
            if type(v) is str:
                return v.startswith(lit)
            return None if v is None else _text_of(v).startswith(lit)

    elif shape == "contains":

        def match(v: Value) -> bool | None:
            if type(v) is str:
                return lit in v and (_NUL not in v or lit in _before_nul(v))
            return None if v is None else test(_text_of(v))

    else:

        def match(v: Value) -> bool | None:
            if type(v) is str:
                return test(v)
            return None if v is None else test(_text_of(v))

    return match


def like(
    value: Value, pattern: Value, *, case_sensitive: bool = True, escape: str | None = None
) -> bool | None:
    """SQL ``value LIKE pattern``; NULL when either is NULL. Compiled patterns are cached."""
    if value is None or pattern is None:
        return None
    return compile_like(_text_of(pattern), case_sensitive, escape)(value)


def nullif(a: Value, b: Value) -> Value:
    """``NULLIF(a, b)``: NULL when ``a = b`` is true, else ``a``."""
    return None if eq(a, b) else a


def cast_integer(v: Value) -> int | None:
    """``CAST(v AS INTEGER)``: reals truncate (clamped), text by its integer prefix."""
    if v is None:
        return None
    if isinstance(v, (list, dict)):
        return 0
    return _int_value(v)


def cast_real(v: Value) -> float | None:
    """``CAST(v AS REAL)``: text by its numeric prefix (``'1e3x'`` is 1000.0)."""
    if v is None:
        return None
    return _real_value(v)


def cast_numeric(v: Value) -> int | float | None:
    """``CAST(v AS NUMERIC)``: numbers stay as they are; text becomes the number of its
    prefix, an integer when that number is integral and fits 64 bits (``'3.0'`` is 3)."""
    if v is None:
        return None
    kind = type(v)
    if kind is int or kind is float:
        return v  # type: ignore[return-value]
    if kind is bool:
        return int(v)  # type: ignore[arg-type]
    text = v if kind is str else canonical_json(v)
    ix, irc = _atoi64(text)  # type: ignore[arg-type]
    if irc == 0:
        return ix
    real = _atof(text)[0]  # type: ignore[arg-type]
    if math.isfinite(real) and real == math.floor(real) and -(2.0**63) <= real < 2.0**63:
        return int(real)
    return real


def cast_text(v: Value) -> str | None:
    """``CAST(v AS TEXT)``."""
    return to_text(v)


CASTS: dict[str, Callable[[Value], Value]] = {
    "INTEGER": cast_integer,
    "REAL": cast_real,
    "NUMERIC": cast_numeric,
    "TEXT": cast_text,
}
"""SQLite's type affinities, each with its CAST."""


def affinity(type_name: str) -> str | None:
    """SQLite's affinity of a declared type name (section 3.1 of its datatype page); None
    for BLOB (a CAST to it is outside the subset)."""
    name = type_name.upper()
    if "INT" in name:
        return "INTEGER"
    if "CHAR" in name or "CLOB" in name or "TEXT" in name:
        return "TEXT"
    if "BLOB" in name or "BINARY" in name or not name:
        return None
    if "REAL" in name or "FLOA" in name or "DOUB" in name:
        return "REAL"
    return "NUMERIC"
