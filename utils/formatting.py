"""Numbers as people read them, rounded the one way the pages round them too.

Python's format rounds a tie to even ("6.2%" for 0.0625) and JavaScript's toFixed
away from zero ("6.3%"): a run's banner (written here) and its row in the history
(written by the page's pct()) then disagreed on the same WER. Both now round the
exact value of x * 100 with ties away from zero.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def percent(x: float, digits: int = 1) -> str:
    """`x` (a fraction) as a percentage with `digits` decimals, as training/www/static/js/api.js's pct()."""
    value = Decimal(x * 100).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{value}%"


def signed_percent(x: float, digits: int = 1) -> str:
    """A change in points, with its sign: "+1.3%", "-0.4%"."""
    return ("+" if x >= 0 else "") + percent(x, digits)
