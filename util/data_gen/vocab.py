"""Shared pieces of the generators: helpers and the pools of names, places and dates they draw from."""

from __future__ import annotations

import hashlib
import random
from typing import Sequence, Tuple


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def _uid(kind: str, seed: int, i: int, length: int = 24) -> str:
    """Deterministic hex id (independent of any random state)."""
    return hashlib.sha1(f"{kind}:{seed}:{i}".encode()).hexdigest()[:length]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _a(phrase: str) -> str:
    """English indefinite article for ``phrase``."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suf = "th"
    else:
        suf = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suf}"


def _commas(n: int) -> str:
    return f"{n:,}"


def _wchoice(rng: random.Random, items: Sequence, weights: Sequence[float]):
    return rng.choices(items, weights=weights, k=1)[0]


# ---------------------------------------------------------------------------
# shared pools
# ---------------------------------------------------------------------------

_F_NAMES = (
    "Anna", "Emma", "Olivia", "Sophie", "Mia", "Laura", "Kate", "Julia", "Sarah", "Emily",
    "Hannah", "Lily", "Chloe", "Grace", "Amy", "Lucy", "Ella", "Zoe", "Maria", "Nina",
    "Eva", "Rachel", "Jessica", "Megan", "Monica", "Helen", "Claire", "Alice", "Jane", "Linda",
)
_M_NAMES = (
    "Tom", "Jack", "Harry", "James", "Mark", "Peter", "Paul", "Adam", "Daniel", "Ben",
    "Sam", "Luke", "Max", "Oliver", "Jacob", "Ethan", "Ryan", "Kevin", "Chris", "David",
    "Mike", "Steve", "Tim", "Greg", "Frank", "Eric", "Leo", "Oscar", "Victor", "Simon",
)
_ALL_NAMES = _F_NAMES + _M_NAMES
_GENDER = {**{n: "f" for n in _F_NAMES}, **{n: "m" for n in _M_NAMES}}
_SURNAMES = (
    "Smith", "Brown", "Miller", "Wilson", "Taylor", "Clark", "Lewis", "Walker", "Hall", "Young",
    "King", "Wright", "Green", "Baker", "Adams", "Nelson", "Carter", "Mitchell", "Roberts", "Turner",
    "Parker", "Evans", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Morgan", "Cooper",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_CITIES = ("Paris", "London", "Berlin", "Rome", "Madrid", "Barcelona", "Lisbon", "Prague", "Vienna",
           "Amsterdam", "Dublin", "New York", "Chicago", "Boston", "Toronto", "Tokyo", "Oslo", "Athens",
           "Warsaw", "Budapest")
_NUM_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
              9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}

_PR = {
    "f": {"he": "she", "him": "her", "his": "her", "He": "She", "His": "Her"},
    "m": {"he": "he", "him": "him", "his": "his", "He": "He", "His": "His"},
    "n": {"he": "it", "him": "it", "his": "its", "He": "It", "His": "Its"},
}


def _fmt_time(h: int, m: int) -> str:
    return f"{h % 12 or 12}{':%02d' % m if m else ''} {'am' if h < 12 else 'pm'}"


def _clock_hm(rng: random.Random, lo: int = 8, hi: int = 21) -> Tuple[int, int]:
    return rng.randint(lo, hi), _wchoice(rng, (0, 30, 15, 45), (6, 3, 1, 1))


def _clock(rng: random.Random, lo: int = 8, hi: int = 21) -> str:
    return _fmt_time(*_clock_hm(rng, lo, hi))


def _date(rng: random.Random) -> str:
    return f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}"


def _date_pair(rng: random.Random) -> Tuple[str, str]:
    """Two dates, the second 2-20 days after the first."""
    mi, d = rng.randrange(12), rng.randint(1, 28)
    d2 = d + rng.randint(2, 20)
    mi2 = mi
    if d2 > 28:
        d2 -= 28
        mi2 = (mi + 1) % 12
    return f"{_MONTHS[mi]} {d}", f"{_MONTHS[mi2]} {d2}"
