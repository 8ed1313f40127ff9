"""Generate lirefs' built-in question sets once, with a fixed seed, as frozen JSONL.

Run from the repository root (needs the generator packages, which lirefs itself never imports)::

    pip install countryinfo==1.0.1 periodictable==2.1.0 us==4.0.0
    python scripts/make_builtin_data.py            # rewrites lirefs/builtin/
    python scripts/make_builtin_data.py --check    # regenerates into a temp dir and compares bytes

What it writes into ``lirefs/builtin/``:

- ``reasoning.jsonl``: multi-step arithmetic word problems (direction set, label "reasoning").
- ``memory.jsonl``: factual recall questions (direction set, label "memory").
- ``eval_arithmetic.jsonl`` / ``eval_facts.jsonl``: evaluation items, disjoint from the direction
  sets (no shared question text; for facts no shared fact).
- ``fewshot_arithmetic.jsonl`` / ``fewshot_facts.jsonl``: project-written few-shot exemplars with
  worked solutions; their questions and facts appear in no other file.
- ``matched.jsonl``: the format-matched set (``lirefs.data.load("builtin-matched")``): reasoning
  and memory questions of the same surface form and answer type over the same facts, paired by
  length (see "The format-matched set" below and docs/data.md).
- ``eval_ladder.jsonl`` / ``fewshot_ladder.jsonl``: the reasoning ladder (benchmark
  ``builtin-ladder``): word problems of 1 to 4 steps and bare sums, 200 scored items and 8
  exemplars with worked solutions per rung, the exemplars a disjoint split of the same generator.
- ``manifest.json``: seed, generator package versions, licence notices, item counts and the sha256
  of every file above.

Every reasoning answer is computed by the same function that writes the question, so the text and
the answer cannot drift apart. Facts come from the generator packages' own data (countryinfo's JSON
files read directly, periodictable's element table, us' state table), with stale or disputed
capitals fixed or dropped as listed in ``CAPITAL_FIXES`` / ``DROP_COUNTRIES`` below. Running the
script twice gives byte-identical files: every random choice goes through ``random.Random`` seeded
from ``SEED`` and a fixed string, inputs are read in sorted order, and the JSON is written with a
fixed key order.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import json
import random
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 20250330
OUT_DIR = Path(__file__).resolve().parent.parent / "lirefs" / "builtin"

GENERATORS = {"countryinfo": "1.0.1", "periodictable": "2.1.0", "us": "4.0.0"}

PROJECT_LICENSE = "Apache-2.0 (project-written)"
COUNTRYINFO_LICENSE = "MIT (countryinfo)"
PERIODICTABLE_LICENSE = "public domain (periodictable)"
US_LICENSE = "BSD-3-Clause (us)"

N_REASONING_PER_TEMPLATE = 18  # direction set: 27 templates x 18 = 486 items
N_EVAL_PER_TEMPLATE = 6  # evaluation set: 27 x 6 = 162 items
# Evaluation facts, per fact type: only groups whose answers are names (whole-word matching in
# generated text is meaningful for them; short codes and numbers are not).
N_EVAL_FACTS = {"country-capital": 90, "element-symbol": 50, "state-capital": 25}

FILES = (
    "reasoning.jsonl",
    "memory.jsonl",
    "eval_arithmetic.jsonl",
    "eval_facts.jsonl",
    "fewshot_arithmetic.jsonl",
    "fewshot_facts.jsonl",
    "matched.jsonl",
    "eval_ladder.jsonl",
    "fewshot_ladder.jsonl",
)


@dataclass
class Item:
    """One question before ids are assigned."""

    question: str
    answer: str
    label: str
    group: str
    source: str
    license: str
    aliases: list[str] = field(default_factory=list)
    fact: tuple[str, str] | None = None  # (fact type, entity) for facts; None for arithmetic
    answer_type: str | None = None  # "number" or "text" in the matched set; not written elsewhere

    def record(self, item_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": item_id,
            "question": self.question,
            "answer": self.answer,
            "aliases": self.aliases,
            "label": self.label,
        }
        if self.answer_type is not None:
            out["answer_type"] = self.answer_type
        out.update(group=self.group, source=self.source, license=self.license)
        return out


def rng_for(*parts: object) -> random.Random:
    """A ``random.Random`` seeded from ``SEED`` and a fixed string (stable across runs)."""
    return random.Random(f"{SEED}:" + ":".join(str(p) for p in parts))


# --------------------------------------------------------------------------------------------
# Arithmetic word problems: each template returns (question, integer answer).
# --------------------------------------------------------------------------------------------

NAMES = [
    "Ava", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Keiko",
    "Liam", "Maya", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Samir", "Tara", "Umar", "Vera",
    "Wen", "Ximena", "Yusuf", "Zoe",
]  # fmt: skip


def a_num(n: int) -> str:
    """The English article before a number said aloud: "an 8", "an 11", "an 18", otherwise "a"."""
    return "an" if str(n).startswith("8") or n in (11, 18) else "a"


def two_names(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(NAMES, 2)
    return a, b


Template = Callable[[random.Random], tuple[str, int]]


def t_rate(rng: random.Random) -> tuple[str, int]:
    r, t = rng.randint(12, 60), rng.randint(20, 90)
    s = rng.randint(3, t // 3)
    machine = rng.choice(["printer", "copier", "label machine"])
    ans = r * (t - s)
    if rng.random() < 0.5:
        q = f"A {machine} prints {r} pages a minute. It runs for {t} minutes but is stopped for {s} of them. How many pages does it print?"
    else:
        q = (
            f"An office {machine} can print {r} pages every minute when it is running. On Monday it "
            f"was switched on for {t} minutes, but a paper jam kept it idle for {s} of those minutes. "
            "How many pages did it print on Monday?"
        )
    return q, ans


def t_speed(rng: random.Random) -> tuple[str, int]:
    v, a = rng.choice([40, 50, 60, 70, 80, 90]), rng.randint(2, 5)
    w, b = rng.choice([30, 45, 55, 65, 75, 100]), rng.randint(2, 4)
    ans = v * a + w * b
    if rng.random() < 0.5:
        q = f"A train goes {v} km/h for {a} hours, then {w} km/h for {b} hours. How many km does it travel?"
    else:
        q = (
            f"A freight train leaves the depot and travels at {v} kilometres per hour for {a} hours. "
            f"It then slows down on a mountain section and travels at {w} kilometres per hour for "
            f"another {b} hours. How many kilometres does it cover in total?"
        )
    return q, ans


def t_discount(rng: random.Random) -> tuple[str, int]:
    d = rng.choice([10, 20, 25, 50])
    p = rng.randint(2, 12) * 20
    c = rng.randint(1, 5) * 2
    item = rng.choice(["jacket", "lamp", "backpack", "pair of boots", "chair"])
    ans = p * (100 - d) // 100 - c
    if rng.random() < 0.5:
        q = f"A {item} costs {p} dollars. It is {d}% off, and a coupon takes off {c} more dollars. What is the final price in dollars?"
    else:
        name = rng.choice(NAMES)
        q = (
            f"{name} wants a {item} that normally costs {p} dollars. This week the shop offers "
            f"{d}% off everything, and {name} also has a coupon worth {c} dollars that is applied "
            "after the discount. How many dollars does the item cost in the end?"
        )
    return q, ans


def t_growth(rng: random.Random) -> tuple[str, int]:
    n = rng.randint(12, 90) * 100
    p = rng.choice([5, 10, 15, 20, 25])
    m = rng.randint(50, 400)
    ans = n * (100 + p) // 100 - m
    if rng.random() < 0.5:
        q = f"A town has {n} people. The population grows by {p}%, then {m} people move away. How many people live there now?"
    else:
        q = (
            f"Last year a small town had {n} residents. Over the year the population grew by {p}% "
            f"because of new housing, but at the end of the year {m} residents moved to the city. "
            "How many residents does the town have now?"
        )
    return q, ans


def t_sharing(rng: random.Random) -> tuple[str, int]:
    m = rng.randint(3, 8)
    each = rng.randint(4, 15)
    k = rng.randint(2, 12)
    n = m * each + k
    a, _ = two_names(rng)
    thing = rng.choice(["stickers", "marbles", "cards", "beads"])
    if rng.random() < 0.5:
        q = f"{a} has {n} {thing}, keeps {k}, and shares the rest equally among {m} friends. How many does each friend get?"
    else:
        q = (
            f"{a} collected {n} {thing} over the summer. {a} decides to keep {k} of them and to "
            f"divide all the others equally among {m} friends from school. How many {thing} does "
            "each friend receive?"
        )
    return q, each


def t_change(rng: random.Random) -> tuple[str, int]:
    a, p = rng.randint(2, 6), rng.randint(2, 9)
    q_price = rng.randint(2, 6)
    bill = 50 if a * p + q_price < 50 else 100
    ans = bill - (a * p + q_price)
    name = rng.choice(NAMES)
    if rng.random() < 0.5:
        q = f"{name} buys {a} notebooks at {p} dollars each and a pen for {q_price} dollars, paying with a {bill}-dollar bill. How much change is due?"
    else:
        q = (
            f"At the stationery shop, {name} picks up {a} notebooks that cost {p} dollars each and "
            f"one pen that costs {q_price} dollars. {name} pays with a {bill}-dollar bill. How many "
            "dollars of change should the cashier give back?"
        )
    return q, ans


def t_ages_diff(rng: random.Random) -> tuple[str, int]:
    x, k = rng.randint(2, 15), rng.randint(2, 10)
    y = rng.randint(k + 3, 40)
    a, b = two_names(rng)
    ans = y - k + x
    if rng.random() < 0.5:
        q = f"{a} is {x} years older than {b}. In {k} years {b} will be {y}. How old is {a} now?"
    else:
        q = (
            f"{a} and {b} are cousins, and {a} is {x} years older than {b}. {b} has worked out "
            f"that in {k} years' time {b} will be {y} years old. How old is {a} today?"
        )
    return q, ans


def t_ages_multiple(rng: random.Random) -> tuple[str, int]:
    m, b_age, k = rng.randint(2, 4), rng.randint(4, 15), rng.randint(2, 12)
    a, b = two_names(rng)
    ans = m * b_age + k
    if rng.random() < 0.5:
        q = f"{a} is {m} times as old as {b}, who is {b_age}. How old will {a} be in {k} years?"
    else:
        q = (
            f"{b} just turned {b_age}. {b}'s aunt {a} likes to point out that she is exactly {m} "
            f"times as old as {b}. How old will {a} be {k} years from now?"
        )
    return q, ans


def t_rope(rng: random.Random) -> tuple[str, int]:
    c = rng.choice([20, 25, 40, 50])  # divides 100, so every answer is whole
    meters = rng.randint(3, 20)
    used = c * rng.randint(1, 4)
    ans = (meters * 100 - used) // c
    if rng.random() < 0.5:
        q = f"{a_num(meters).capitalize()} {meters}-metre rope loses {used} cm to knots, and the rest is cut into {c} cm pieces. How many pieces are there?"
    else:
        q = (
            f"A climbing club buys a rope that is {meters} metres long. They use {used} centimetres "
            f"of it for knots at the ends and cut the remaining rope into pieces that are each {c} "
            "centimetres long. How many pieces do they get?"
        )
    return q, ans


def t_minutes(rng: random.Random) -> tuple[str, int]:
    h, m, t = rng.randint(2, 3), rng.randint(5, 55), rng.randint(5, 25)
    ans = h * 60 + m + t
    if rng.random() < 0.5:
        q = f"A film lasts {h} hours {m} minutes, plus {t} minutes of trailers. How many minutes is that in total?"
    else:
        q = (
            f"The evening show at the cinema starts with {t} minutes of trailers and adverts, and "
            f"then the film itself runs for {h} hours and {m} minutes. How many minutes does the "
            "whole show last?"
        )
    return q, ans


def t_workers(rng: random.Random) -> tuple[str, int]:
    while True:
        n, d, k = rng.randint(2, 12), rng.randint(3, 20), rng.randint(2, 15)
        if k != n and (n * d) % k == 0:
            break
    ans = n * d // k
    if rng.random() < 0.5:
        q = f"{n} workers paint a fence in {d} days. How many days would {k} workers take at the same rate?"
    else:
        q = (
            f"A crew of {n} painters needs {d} days to paint all the fences on a farm. If the farm "
            f"instead hires {k} painters who work at the same rate, how many days will the job take?"
        )
    return q, ans


def t_mixture(rng: random.Random) -> tuple[str, int]:
    while True:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        p, q_ = rng.randint(3, 15), rng.randint(3, 15)
        if p != q_ and (a * p + b * q_) % (a + b) == 0:
            break
    ans = (a * p + b * q_) // (a + b)
    thing = rng.choice(["coffee beans", "bird seed", "tea leaves", "nuts"])
    if rng.random() < 0.5:
        q = f"{a} kg of {thing} at {p} dollars/kg is mixed with {b} kg at {q_} dollars/kg. What is the mixture's price per kg in dollars?"
    else:
        q = (
            f"A grocer blends {a} kilograms of {thing} that cost {p} dollars per kilogram with {b} "
            f"kilograms of another kind that cost {q_} dollars per kilogram. To break even, what "
            "price per kilogram, in dollars, should the grocer charge for the blend?"
        )
    return q, ans


def t_inventory(rng: random.Random) -> tuple[str, int]:
    n = rng.randint(80, 400)
    a, b = rng.randint(10, n // 3), rng.randint(10, n // 3)
    c = rng.randint(20, 150)
    ans = n - a - b + c
    fruit = rng.choice(["apples", "oranges", "melons", "pears"])
    if rng.random() < 0.5:
        q = f"A shop has {n} {fruit}, sells {a} in the morning and {b} in the afternoon, then gets {c} more. How many does it have?"
    else:
        q = (
            f"A market stall starts the day with {n} {fruit}. It sells {a} of them before noon and "
            f"another {b} in the afternoon. Just before closing, a farmer delivers {c} fresh "
            f"{fruit}. How many {fruit} are on the stall at closing time?"
        )
    return q, ans


def t_eggs(rng: random.Random) -> tuple[str, int]:
    k = rng.choice([6, 10, 12, 18])
    b, loose = rng.randint(2, 9), rng.randint(2, k - 1)
    u = rng.randint(2, k * b // 2)
    ans = k * b + loose - u
    name = rng.choice(NAMES)
    if rng.random() < 0.5:
        q = f"{name} has {b} boxes of {k} eggs and {loose} loose eggs, and bakes with {u}. How many eggs are left?"
    else:
        q = (
            f"For the bake sale, {name} brings {b} full boxes of eggs with {k} eggs in each box, "
            f"plus {loose} loose eggs in a bowl. The cakes use up {u} eggs. How many eggs does "
            f"{name} have left over?"
        )
    return q, ans


def t_savings(rng: random.Random) -> tuple[str, int]:
    s, h, w = rng.randint(5, 40), rng.randint(10, 200), rng.randint(3, 20)
    g = h + s * w
    name = rng.choice(NAMES)
    item = rng.choice(["a bicycle", "a tablet", "a guitar", "a telescope"])
    if rng.random() < 0.5:
        q = f"{name} has {h} dollars and saves {s} a week. How many weeks until {name} has {g} dollars?"
    else:
        q = (
            f"{name} wants to buy {item} that costs {g} dollars. {name} already has {h} dollars in "
            f"a piggy bank and puts aside {s} dollars from a paper round every week. How many weeks "
            f"will it take {name} to have exactly enough?"
        )
    return q, w


def t_fence(rng: random.Random) -> tuple[str, int]:
    length, w, c = rng.randint(5, 40), rng.randint(3, 30), rng.randint(2, 15)
    ans = 2 * (length + w) * c
    if rng.random() < 0.5:
        q = f"A garden is {length} m by {w} m. Fencing costs {c} dollars per metre. What does fencing the perimeter cost?"
    else:
        q = (
            f"A family's rectangular vegetable garden is {length} metres long and {w} metres wide. "
            f"They want a fence all the way around it, and the fencing costs {c} dollars per "
            "metre. How many dollars will the fence cost?"
        )
    return q, ans


def t_tiles(rng: random.Random) -> tuple[str, int]:
    while True:
        length, w, k = rng.randint(3, 20), rng.randint(3, 15), rng.choice([4, 5, 6, 8, 10])
        if (length * w) % k == 0:
            break
    ans = length * w // k
    if rng.random() < 0.5:
        q = f"A floor is {length} m by {w} m. Each tile covers one square metre and a box holds {k} tiles. How many boxes are needed?"
    else:
        q = (
            f"A builder is tiling a rectangular hall that measures {length} metres by {w} metres. "
            f"Each tile covers exactly one square metre, and tiles are sold in boxes of {k}. How "
            "many boxes does the builder need to cover the floor?"
        )
    return q, ans


def t_average(rng: random.Random) -> tuple[str, int]:
    while True:
        a, b, c = rng.randint(60, 95), rng.randint(60, 95), rng.randint(60, 95)
        m = rng.randint(70, 90)
        need = 4 * m - (a + b + c)
        if 50 <= need <= 100:
            break
    name = rng.choice(NAMES)
    if rng.random() < 0.5:
        q = f"{name} scored {a}, {b} and {c} on three tests. What score on the fourth gives an average of {m}?"
    else:
        q = (
            f"In a maths course there are four tests. {name} scored {a} on the first, {b} on the "
            f"second and {c} on the third. What score does {name} need on the fourth test to "
            f"finish with an average of exactly {m}?"
        )
    return q, need


FRACTIONS = [(1, 2, "half"), (1, 3, "a third"), (1, 4, "a quarter"), (2, 5, "two fifths"),
             (3, 4, "three quarters"), (2, 3, "two thirds"), (3, 5, "three fifths")]  # fmt: skip


def t_fraction(rng: random.Random) -> tuple[str, int]:
    num, den, word = rng.choice(FRACTIONS)
    n = den * rng.randint(4, 12)
    absent = rng.randint(2, 4)
    girls = n * num // den
    ans = n - girls - absent
    if rng.random() < 0.5:
        q = f"A class has {n} pupils; {word} of them are girls and {absent} boys are absent. How many boys are present?"
    else:
        q = (
            f"There are {n} pupils in a school class, and {word} of them are girls. On a rainy "
            f"Tuesday, {absent} of the boys stayed at home. How many boys were in class that day?"
        )
    return q, ans


def t_recipe(rng: random.Random) -> tuple[str, int]:
    while True:
        s, t = rng.choice([2, 4, 6, 8]), rng.randint(3, 20)
        g = rng.randint(2, 20) * 25
        if t != s and (g * t) % s == 0:
            break
    ans = g * t // s
    ingredient = rng.choice(["flour", "sugar", "rice", "butter"])
    if rng.random() < 0.5:
        q = f"A recipe for {s} people uses {g} g of {ingredient}. How many grams are needed for {t} people?"
    else:
        q = (
            f"A family recipe that serves {s} people calls for {g} grams of {ingredient}. For a "
            f"party, the cook wants to make enough for {t} people using the same proportions. How "
            f"many grams of {ingredient} are needed?"
        )
    return q, ans


def t_fuel(rng: random.Random) -> tuple[str, int]:
    while True:
        per100, d = rng.randint(4, 12), rng.randint(5, 60) * 10
        if (per100 * 2 * d) % 100 == 0:
            break
    ans = per100 * 2 * d // 100
    if rng.random() < 0.5:
        q = f"A car uses {per100} litres per 100 km. How many litres does a {d} km trip there and back take?"
    else:
        q = (
            f"A family car uses {per100} litres of petrol for every 100 kilometres. The family "
            f"drives to their grandparents' house, which is {d} kilometres away, and back home "
            "again. How many litres of petrol does the round trip use?"
        )
    return q, ans


def t_overtime(rng: random.Random) -> tuple[str, int]:
    w = rng.randint(10, 30)
    o = w + rng.randint(3, 15)
    h = rng.randint(41, 55)
    ans = 40 * w + (h - 40) * o
    name = rng.choice(NAMES)
    if rng.random() < 0.5:
        q = f"{name} earns {w} dollars an hour for 40 hours and {o} an hour beyond that. How much for {h} hours?"
    else:
        q = (
            f"{name} is paid {w} dollars per hour for the first 40 hours worked in a week and {o} "
            f"dollars per hour for every hour over 40. Last week {name} worked {h} hours. How "
            "many dollars did that week pay?"
        )
    return q, ans


def t_consecutive(rng: random.Random) -> tuple[str, int]:
    k = rng.choice([3, 4, 5])
    first = rng.randint(5, 120)
    total = sum(range(first, first + k))
    ans = first + k - 1
    word = {3: "three", 4: "four", 5: "five"}[k]
    if rng.random() < 0.5:
        q = f"The sum of {word} consecutive whole numbers is {total}. What is the largest of them?"
    else:
        q = (
            f"A teacher writes {word} consecutive whole numbers on the board and tells the class "
            f"that together they add up to {total}. What is the largest number on the board?"
        )
    return q, ans


def t_opening(rng: random.Random) -> tuple[str, int]:
    start, close = rng.randint(7, 10), rng.randint(4, 9)
    d, w = rng.randint(4, 7), rng.randint(2, 6)
    ans = (close + 12 - start) * d * w
    if rng.random() < 0.5:
        q = f"A library opens at {start} a.m. and closes at {close} p.m., {d} days a week. How many hours is it open in {w} weeks?"
    else:
        q = (
            f"The town library opens its doors at {start} o'clock in the morning and closes at "
            f"{close} o'clock in the evening. It is open {d} days every week. How many hours in "
            f"total is it open over {w} weeks?"
        )
    return q, ans


def t_meeting(rng: random.Random) -> tuple[str, int]:
    a, b, t = rng.randint(8, 25), rng.randint(8, 25), rng.randint(2, 6)
    dist = (a + b) * t
    if rng.random() < 0.5:
        q = f"Two cyclists {dist} km apart ride toward each other at {a} km/h and {b} km/h. After how many hours do they meet?"
    else:
        x, y = two_names(rng)
        q = (
            f"{x} and {y} live {dist} kilometres apart. At noon they set off on their bikes "
            f"towards each other, {x} riding at {a} kilometres per hour and {y} at {b} kilometres "
            "per hour. How many hours later do they meet?"
        )
    return q, t


def t_tickets(rng: random.Random) -> tuple[str, int]:
    adult, child = rng.randint(8, 20), rng.randint(3, 7)
    x, y, g = rng.randint(2, 3), rng.randint(2, 4), rng.randint(2, 6)
    ans = g * (x * adult + y * child)
    if rng.random() < 0.5:
        q = f"Adult tickets cost {adult} dollars and child tickets {child}. {g} families each buy {x} adult and {y} child tickets. What is the total?"
    else:
        q = (
            f"At the zoo, an adult ticket costs {adult} dollars and a child ticket costs {child} "
            f"dollars. A group of {g} families arrives, and every family buys {x} adult tickets and "
            f"{y} child tickets. How many dollars do the families pay altogether?"
        )
    return q, ans


def t_reading(rng: random.Random) -> tuple[str, int]:
    while True:
        r, s, wk = rng.randint(5, 20), rng.randint(10, 40), rng.randint(2, 3)
        read = wk * (5 * r + 2 * s)
        p = read + rng.randint(10, 150)
        if p <= 900:
            break
    ans = p - read
    name = rng.choice(NAMES)
    if rng.random() < 0.5:
        q = f"{a_num(p).capitalize()} {p}-page book: {name} reads {r} pages each weekday and {s} each weekend day. How many pages are left after {wk} weeks?"
    else:
        q = (
            f"{name} starts a novel that has {p} pages. On each weekday {name} reads {r} pages "
            f"on the bus, and on each day of the weekend {name} reads {s} pages. How many pages "
            f"are still unread after {wk} full weeks?"
        )
    return q, ans


def t_temperature(rng: random.Random) -> tuple[str, int]:
    while True:  # non-negative answers: the GSM8K answer pattern has no minus sign
        t0, a, h, f = rng.randint(2, 15), rng.randint(2, 4), rng.randint(2, 7), rng.randint(2, 10)
        ans = t0 + a * h - f
        if ans >= 0:
            break
    if rng.random() < 0.5:
        q = f"At 6 a.m. it was {t0} degrees. It rose {a} degrees an hour for {h} hours, then fell {f} degrees. What is the temperature now?"
    else:
        q = (
            f"At six in the morning the thermometer outside read {t0} degrees. The temperature "
            f"then rose by {a} degrees every hour for {h} hours, and a cold wind in the afternoon "
            f"brought it down by {f} degrees. What temperature did the thermometer show then?"
        )
    return q, ans


TEMPLATES: dict[str, Template] = {
    "rate": t_rate,
    "speed": t_speed,
    "discount": t_discount,
    "growth": t_growth,
    "sharing": t_sharing,
    "change": t_change,
    "ages-diff": t_ages_diff,
    "ages-multiple": t_ages_multiple,
    "rope": t_rope,
    "minutes": t_minutes,
    "workers": t_workers,
    "mixture": t_mixture,
    "inventory": t_inventory,
    "eggs": t_eggs,
    "savings": t_savings,
    "fence": t_fence,
    "tiles": t_tiles,
    "average": t_average,
    "fraction": t_fraction,
    "recipe": t_recipe,
    "fuel": t_fuel,
    "overtime": t_overtime,
    "consecutive": t_consecutive,
    "opening-hours": t_opening,
    "meeting": t_meeting,
    "tickets": t_tickets,
    "reading": t_reading,
    "temperature": t_temperature,
}

FEWSHOT_ARITHMETIC = [
    (
        "A baker makes 24 rolls in the morning and twice as many in the afternoon. She sells 50 rolls. How many rolls are left?",
        "In the afternoon she makes 2 * 24 = 48 rolls. In total she makes 24 + 48 = 72 rolls. "
        "After selling 50, 72 - 50 = 22 rolls are left. The final answer is 22.",
        "22",
    ),
    (
        "A parking garage has 6 floors with 35 spaces on each floor. On Friday 148 cars are parked there. How many spaces are free?",
        "The garage has 6 * 35 = 210 spaces. With 148 cars parked, 210 - 148 = 62 spaces are free. "
        "The final answer is 62.",
        "62",
    ),
    (
        "Lena swims 3 lengths of a 50-metre pool every minute. How many metres does she swim in 12 minutes?",
        "Each minute she swims 3 * 50 = 150 metres. In 12 minutes she swims 12 * 150 = 1800 metres. "
        "The final answer is 1800.",
        "1800",
    ),
    (
        "A gardener plants 7 rows of tulips with 16 bulbs in each row. Squirrels dig up 19 bulbs. How many bulbs remain?",
        "She plants 7 * 16 = 112 bulbs. After the squirrels take 19, 112 - 19 = 93 bulbs remain. "
        "The final answer is 93.",
        "93",
    ),
    (
        "A water tank holds 900 litres. It is one third full, and a pump adds 45 litres per hour. How many litres are in the tank after 4 hours?",
        "One third of 900 is 900 / 3 = 300 litres. In 4 hours the pump adds 4 * 45 = 180 litres. "
        "The tank then holds 300 + 180 = 480 litres. The final answer is 480.",
        "480",
    ),
    (
        "Marco buys 3 shirts at 18 dollars each and a belt that costs half as much as one shirt. How much does he spend?",
        "The shirts cost 3 * 18 = 54 dollars. The belt costs 18 / 2 = 9 dollars. Together he spends "
        "54 + 9 = 63 dollars. The final answer is 63.",
        "63",
    ),
    (
        "A school orders 14 boxes of pencils with 25 pencils per box and shares them equally among 10 classes. How many pencils does each class get?",
        "The school has 14 * 25 = 350 pencils. Shared among 10 classes, each class gets 350 / 10 = "
        "35 pencils. The final answer is 35.",
        "35",
    ),
    (
        "Ruth was 9 years old when her brother was born. Her brother is now 13. How old will Ruth be in 5 years?",
        "Ruth is 9 years older than her brother, so she is now 13 + 9 = 22. In 5 years she will be "
        "22 + 5 = 27. The final answer is 27.",
        "27",
    ),
]


def make_arithmetic() -> tuple[list[Item], list[Item]]:
    """Direction and evaluation arithmetic items; no question text appears twice anywhere."""
    seen = {q for q, _, _ in FEWSHOT_ARITHMETIC}
    direction: list[Item] = []
    evaluation: list[Item] = []
    for name, template in TEMPLATES.items():
        rng = rng_for("arithmetic", name)
        made: list[Item] = []
        attempts = 0
        while len(made) < N_REASONING_PER_TEMPLATE + N_EVAL_PER_TEMPLATE:
            attempts += 1
            if attempts > 10_000:
                raise RuntimeError(f"template {name!r} cannot produce enough distinct questions")
            question, answer = template(rng)
            if question in seen:
                continue
            if not isinstance(answer, int) or answer < 0:
                raise AssertionError(f"template {name!r} gave a non-integer or negative answer")
            seen.add(question)
            made.append(
                Item(question, str(answer), "reasoning", name, f"template:{name}", PROJECT_LICENSE)
            )
        direction += made[:N_REASONING_PER_TEMPLATE]
        evaluation += made[N_REASONING_PER_TEMPLATE:]
    return direction, evaluation


# --------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------

# countryinfo files that are not sovereign states, are duplicates or obsolete, or whose capital
# is disputed or undefined (Israel/Palestine: Jerusalem's status; Taiwan: statehood; Nauru: no
# official capital; Western Sahara: territory).
DROP_COUNTRIES = {
    "Curaçao", "curaçao", "american_samoa", "anguilla", "antarctica", "aruba", "bermuda",
    "bonaire_sint_eustatius_and_saba", "bouvet_island", "british_virgin_islands", "cayman_islands",
    "christmas_island", "cocos_keeling_islands", "cook_islands", "falkland_islands_islas_malvinas",
    "faroe_islands", "french_guiana", "french_polynesia", "french_southern_and_antarctic_lands",
    "gibraltar", "greenland", "guadeloupe", "guam", "guernsey", "heard_island_and_mc_donald_islands",
    "holy_see_vatican_city", "holy_see_vatican_city_state", "hong_kong", "israel", "jersey",
    "macau", "man_isle_of", "martinique", "mayotte", "montserrat", "nauru", "netherlands_antilles",
    "new_caledonia", "niue", "norfolk_island", "northern_mariana_islands", "palestine",
    "palestine_state_of", "pitcaim_islands", "puerto_rico", "reunion", "saint_barthélemy",
    "saint_helena", "saint_martin_french_part", "saint_pierre_and_miquelon",
    "serbia_and_montenegro", "sint_maarten_dutch_part", "south_georgia_and_south_sandwich_islands",
    "svalbard", "taiwan", "tokelau", "turks_and_caicos_islands",
    "united_states_minor_outlying_islands", "virgin_islands_british", "virgin_islands_us",
    "wallis_and_futuna", "western_sahara", "åland_islands",
}  # fmt: skip

# file stem -> (country name as used in questions or None, capital or None, extra aliases).
CAPITAL_FIXES: dict[str, tuple[str | None, str | None, list[str]]] = {
    "kazakhstan": (None, "Astana", ["Nur-Sultan"]),  # renamed back to Astana in 2022
    "burundi": (None, "Gitega", []),  # political capital since 2019
    "swaziland": ("Eswatini", "Mbabane", ["Lobamba"]),  # administrative / royal-legislative
    "macedonia_former_yugoslav_republic_of": ("North Macedonia", None, []),
    "czechia": ("the Czech Republic", None, []),
    "bolivia": (None, "Sucre", ["La Paz"]),  # constitutional / seat of government
    "benin": (None, "Porto-Novo", ["Cotonou"]),
    "cote_d_ivoire": (None, "Yamoussoukro", ["Abidjan"]),
    "sri_lanka": (None, "Sri Jayawardenepura Kotte", ["Kotte", "Colombo"]),
    "south_africa": (None, "Pretoria", ["Cape Town", "Bloemfontein"]),
    "malaysia": (None, "Kuala Lumpur", ["Putrajaya"]),
    "myanmar": (None, "Naypyidaw", ["Nay Pyi Taw", "Naypyitaw"]),
    "yemen": (None, "Sana'a", ["Sanaa"]),
    "kiribati": (None, "South Tarawa", ["Tarawa"]),
    "switzerland": (None, "Bern", ["Berne"]),
    "ukraine": (None, "Kyiv", ["Kiev"]),
    "united_states_of_america": (
        "the United States",
        "Washington, D.C.",
        ["Washington", "Washington D.C.", "Washington DC"],
    ),
    "mongolia": (None, "Ulaanbaatar", ["Ulan Bator"]),
    "tonga": (None, "Nuku'alofa", ["Nukualofa"]),
    "chad": (None, "N'Djamena", ["Ndjamena"]),
    "grenada": (None, "St. George's", ["Saint George's"]),
    "antigua_and_barbuda": (None, "Saint John's", ["St. John's"]),
    "micronesia_federated_states_of": ("the Federated States of Micronesia", None, []),
    "equatorial_guinea": (None, "Malabo", ["Ciudad de la Paz"]),  # transfer under way
}

THE_COUNTRIES = {
    "Bahamas", "Gambia", "Netherlands", "United Kingdom", "Philippines", "Maldives",
    "United Arab Emirates", "Dominican Republic", "Central African Republic",
    "Democratic Republic of the Congo", "Republic of the Congo", "Marshall Islands",
    "Solomon Islands", "Comoros", "Seychelles",
}  # fmt: skip


# Other accepted names of countries (for questions whose answer is the country).
COUNTRY_ALIASES = {
    "Ivory Coast": ["Côte d'Ivoire"],
    "East Timor": ["Timor-Leste"],
    "Eswatini": ["Swaziland"],
    "Czech Republic": ["Czechia"],
    "Cape Verde": ["Cabo Verde"],
    "Turkey": ["Türkiye"],
    "North Macedonia": ["Macedonia"],
    "Myanmar": ["Burma"],
    "United States": ["United States of America", "USA", "US"],
    "United Kingdom": ["UK", "Great Britain", "Britain"],
    "Democratic Republic of the Congo": ["DR Congo", "DRC", "Congo-Kinshasa"],
    "Republic of the Congo": ["Congo", "Congo-Brazzaville"],
    "Federated States of Micronesia": ["Micronesia"],
    "Vietnam": ["Viet Nam"],
    "South Korea": ["Korea", "Republic of Korea"],
    "North Korea": ["DPRK"],
}


def ascii_fold(text: str) -> str:
    """``text`` without diacritics (Brasília -> Brasilia), for accepted spellings."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def with_folded(answer: str, aliases: list[str]) -> list[str]:
    """Aliases plus diacritic-free spellings, without duplicates or the answer itself."""
    out: list[str] = []
    for a in [*aliases, ascii_fold(answer), *(ascii_fold(a) for a in aliases)]:
        if a != answer and a not in out:
            out.append(a)
    return out


@dataclass(frozen=True)
class Country:
    stem: str
    name: str  # as used mid-sentence ("the Netherlands")
    capital: str
    capital_aliases: tuple[str, ...]
    calling_code: str | None


def read_countries() -> list[Country]:
    """Sovereign states with their capital (fixed where stale) from countryinfo's JSON files."""
    import countryinfo

    data_dir = Path(countryinfo.__file__).parent / "data"
    countries = []
    for path in sorted(data_dir.glob("*.json")):
        stem = path.stem
        if stem in DROP_COUNTRIES:
            continue
        raw = json.loads(path.read_text(encoding="utf-8"))
        name, capital = raw["name"], raw.get("capital")
        aliases: list[str] = []
        if stem in CAPITAL_FIXES:
            fix_name, fix_capital, aliases = CAPITAL_FIXES[stem]
            name = fix_name or name
            capital = fix_capital or capital
        if not isinstance(capital, str) or not capital:
            raise ValueError(f"{path.name}: no usable capital ({capital!r}); fix or drop it")
        if name.startswith("The "):
            name = "the " + name[4:]
        elif name in THE_COUNTRIES:
            name = "the " + name
        codes = [c for c in raw.get("callingCodes") or [] if c]
        # One code only, and not a North American "1xxx" area code (those are +1 plus an area).
        code = (
            codes[0]
            if len(codes) == 1 and (codes[0] == "1" or not codes[0].startswith("1"))
            else None
        )
        countries.append(
            Country(stem, name, capital, tuple(with_folded(capital, list(aliases))), code)
        )
    return countries


@dataclass(frozen=True)
class Element:
    number: int
    symbol: str
    name: str  # capitalised US spelling (periodictable's)
    aliases: tuple[str, ...]


UK_SPELLINGS = {"Aluminum": "Aluminium", "Sulfur": "Sulphur", "Cesium": "Caesium"}


def read_elements() -> list[Element]:
    import periodictable

    out = []
    for el in periodictable.elements:
        if el.number < 1:
            continue  # periodictable's element 0 is the neutron
        name = el.name.capitalize()
        aliases = (UK_SPELLINGS[name],) if name in UK_SPELLINGS else ()
        out.append(Element(el.number, el.symbol, name, aliases))
    return out


@dataclass(frozen=True)
class State:
    name: str
    abbr: str
    capital: str
    year: int
    original: bool  # one of the 13 states that ratified the Constitution


ORIGINAL_STATES = {"DE", "PA", "NJ", "GA", "CT", "MA", "MD", "SC", "NH", "VA", "NY", "NC", "RI"}


def read_states() -> list[State]:
    import us

    out = []
    for s in sorted(us.states.STATES, key=lambda s: s.abbr):
        if s.capital is None or s.statehood_year is None:
            raise ValueError(f"us lists no capital or statehood year for {s.name}")
        out.append(State(s.name, s.abbr, s.capital, s.statehood_year, s.abbr in ORIGINAL_STATES))
    return out


LONG_GEO = [
    "My grandmother keeps the atlas from her school days on a shelf in the living room, and we "
    "were leafing through it together after dinner last night. ",
    "Our team argued about this one for ten minutes during the pub quiz on Thursday evening and "
    "never settled it, so I am asking again now. ",
    "I am preparing for a geography quiz and want to check one answer before the weekend. ",
    "My daughter asked me this while we were looking at a map of the world on the kitchen wall. ",
    "In the travel section of an old encyclopedia there is a short entry for every nation. ",
]
LONG_CHEM = [
    "While tidying the chemistry storeroom after the last lesson of the term, a teacher finds an "
    "old wall chart of the elements with some boxes faded. ",
    "A science museum has a large interactive periodic table, and visitors press each box to "
    "hear a short description of the element. ",
    "On the periodic table that hangs in a school chemistry laboratory, every box shows a short symbol. ",
    "A student revising for a chemistry exam is writing flash cards about the elements. ",
]
LONG_US = [
    "A history teacher hands out a worksheet with a map of the United States and asks "
    "the class to fill in a fact about each state. ",
    "Two friends planning a long summer drive from one coast to the other are quizzing each "
    "other about the states on their route. ",
    "A family on a road trip across the United States is playing a trivia game in the car. ",
    "For a civics homework sheet about the fifty states, one line is still blank. ",
]


# Share of fact questions asked in a long, contextual phrasing. Arithmetic problems are longer
# than recall questions; long recall phrasings make the two length distributions overlap, so that
# length-matched subsets (QuestionSets.length_matched) are large enough to be useful.
P_LONG = 0.45


def pick(rng: random.Random, short: list[str], long: list[str]) -> str:
    """One phrasing: a long one with probability ``P_LONG``, else a short one."""
    return rng.choice(long) if rng.random() < P_LONG else rng.choice(short)


def country_capital_q(rng: random.Random, c: Country) -> str:
    return pick(
        rng,
        [
            f"What is the capital of {c.name}?",
            f"Which city is the capital of {c.name}?",
            f"Name the capital city of {c.name}.",
            f"What is the name of the capital city of {c.name}?",
        ],
        [
            rng.choice(LONG_GEO) + f"What is the capital city of {c.name}?",
            f"A traveller flying into {c.name} wants to land in its capital first. Which city is "
            f"the capital of {c.name}?",
            f"Every country has a city where its government sits. Thinking of {c.name}, which "
            "city is its capital?",
        ],
    )


def capital_country_q(rng: random.Random, c: Country) -> str:
    return pick(
        rng,
        [
            f"{c.capital} is the capital of which country?",
            f"Which country has {c.capital} as its capital?",
        ],
        [
            rng.choice(LONG_GEO) + f"Of which country is {c.capital} the capital city?",
            f"A postcard arrives with a photo of {c.capital}, labelled as a capital city. Which "
            "country is it the capital of?",
        ],
    )


def calling_code_q(rng: random.Random, c: Country) -> str:
    return pick(
        rng,
        [
            f"What is the international calling code of {c.name}?",
            f"Which country calling code is used for phone numbers in {c.name}?",
        ],
        [
            "Before phoning a friend abroad you need the country code. What is the international "
            f"dialling code for {c.name}?",
            "An old address book lists telephone numbers from many countries with their codes. "
            f"What is the calling code of {c.name}?",
        ],
    )


def symbol_q(rng: random.Random, e: Element) -> str:
    name = e.name.lower()
    return pick(
        rng,
        [
            f"What is the chemical symbol for {name}?",
            f"Which symbol stands for the element {name}?",
            f"What is the symbol of {name} on the periodic table?",
        ],
        [
            rng.choice(LONG_CHEM) + f"What is the chemical symbol of {name}?",
            "A chemist writing a formula needs the one- or two-letter symbol for "
            f"{name}. What is it?",
        ],
    )


def element_from_symbol_q(rng: random.Random, e: Element) -> str:
    return pick(
        rng,
        [
            f"Which element has the chemical symbol {e.symbol}?",
            f"What element does the symbol {e.symbol} stand for?",
            f"Which chemical element is written as {e.symbol}?",
        ],
        [
            rng.choice(LONG_CHEM) + f"Which element has the symbol {e.symbol}?",
            f"A label on a bottle in the storeroom shows only the symbol {e.symbol}. Which "
            "element is that?",
        ],
    )


def atomic_number_q(rng: random.Random, e: Element) -> str:
    name = e.name.lower()
    return pick(
        rng,
        [
            f"What is the atomic number of {name}?",
            f"How many protons does an atom of {name} have?",
            f"What is {name}'s atomic number?",
        ],
        [
            rng.choice(LONG_CHEM) + f"What is the atomic number of {name}?",
            "The periodic table orders the elements by the number of protons in the nucleus. "
            f"What is the atomic number of {name}?",
        ],
    )


def state_capital_q(rng: random.Random, s: State) -> str:
    return pick(
        rng,
        [
            f"What is the capital of the U.S. state of {s.name}?",
            f"Which city is the state capital of {s.name}?",
            f"Name the capital of {s.name}, one of the fifty US states.",
        ],
        [
            rng.choice(LONG_US) + f"What is the capital of {s.name}?",
            f"The state legislature of {s.name} meets in the state capitol building. In which "
            "city is it?",
        ],
    )


def state_abbr_q(rng: random.Random, s: State) -> str:
    return pick(
        rng,
        [
            f"What is the two-letter postal abbreviation of {s.name}?",
            f"Which two-letter code does the US Postal Service use for {s.name}?",
        ],
        [
            rng.choice(LONG_US) + f"What is the postal abbreviation for {s.name}?",
            f"When addressing an envelope to someone in {s.name}, which two-letter state code "
            "goes after the city?",
        ],
    )


def state_year_q(rng: random.Random, s: State) -> str:
    if s.original:
        return pick(
            rng,
            [f"In which year did {s.name} ratify the United States Constitution?"],
            [rng.choice(LONG_US) + f"In what year did {s.name} ratify the U.S. Constitution?"],
        )
    return pick(
        rng,
        [
            f"In which year was {s.name} admitted to the Union as a state?",
            f"In what year did {s.name} become a U.S. state?",
        ],
        [rng.choice(LONG_US) + f"In which year did {s.name} join the Union?"],
    )


# Few-shot exemplars for facts; their facts are excluded from every set below.
FEWSHOT_FACTS = [
    (
        "What is the capital of France?",
        "The answer is Paris.",
        "Paris",
        ("country-capital", "france"),
    ),
    (
        "What is the capital of Japan?",
        "The answer is Tokyo.",
        "Tokyo",
        ("country-capital", "japan"),
    ),
    (
        "What is the capital of the U.S. state of Texas?",
        "The answer is Austin.",
        "Austin",
        ("state-capital", "TX"),
    ),
    (
        "Which element has the chemical symbol O?",
        "The answer is Oxygen.",
        "Oxygen",
        ("element-symbol", "O"),
    ),
    (
        "Which element has the chemical symbol Na?",
        "The answer is Sodium.",
        "Sodium",
        ("element-symbol", "Na"),
    ),
]


def make_facts() -> tuple[list[Item], list[Item]]:
    """Direction and evaluation fact items, one question per fact, no fact in both."""
    countries, elements, states = read_countries(), read_elements(), read_states()
    ci_src, pt_src, us_src = (
        f"countryinfo {GENERATORS['countryinfo']}",
        f"periodictable {GENERATORS['periodictable']}",
        f"us {GENERATORS['us']}",
    )
    fixed = set(CAPITAL_FIXES)
    facts: dict[str, list[Item]] = {}

    def add(group: str, entity: str, item: Item) -> None:
        item.fact = (group, entity)
        facts.setdefault(group, []).append(item)

    for c in countries:
        rng = rng_for("fact", "country", c.stem)
        src = ci_src + (" (corrected by lirefs)" if c.stem in fixed else "")
        # One fact, asked in one of two directions (never both: that would be the same fact twice).
        # Direction "capital -> country" is reserved for the direction set (see below).
        add(
            "country-capital",
            c.stem,
            Item(
                country_capital_q(rng, c), c.capital, "memory", "country-capital", src,
                COUNTRYINFO_LICENSE, list(c.capital_aliases),
            ),
        )  # fmt: skip
        if c.calling_code is not None:
            add(
                "country-calling-code",
                c.stem,
                Item(
                    calling_code_q(rng, c), c.calling_code, "memory", "country-calling-code",
                    ci_src, COUNTRYINFO_LICENSE, [f"+{c.calling_code}"],
                ),
            )  # fmt: skip
    for e in elements:
        rng = rng_for("fact", "element", e.symbol)
        add(
            "element-symbol",
            e.symbol,
            Item(
                element_from_symbol_q(rng, e), e.name, "memory", "element-symbol", pt_src,
                PERIODICTABLE_LICENSE, list(e.aliases),
            ),
        )  # fmt: skip
        add(
            "element-number",
            e.symbol,
            Item(
                atomic_number_q(rng, e), str(e.number), "memory", "element-number", pt_src,
                PERIODICTABLE_LICENSE,
            ),
        )  # fmt: skip
    for s in states:
        rng = rng_for("fact", "state", s.abbr)
        add(
            "state-capital",
            s.abbr,
            Item(state_capital_q(rng, s), s.capital, "memory", "state-capital", us_src, US_LICENSE,
                 with_folded(s.capital, ["St. Paul"] if s.capital == "Saint Paul" else [])),
        )  # fmt: skip
        add(
            "state-abbreviation",
            s.abbr,
            Item(state_abbr_q(rng, s), s.abbr, "memory", "state-abbreviation", us_src, US_LICENSE),
        )
        add(
            "state-admission-year",
            s.abbr,
            Item(state_year_q(rng, s), str(s.year), "memory", "state-admission-year", us_src,
                 US_LICENSE),
        )  # fmt: skip

    excluded = {fact for *_, fact in FEWSHOT_FACTS}
    direction: list[Item] = []
    evaluation: list[Item] = []
    for group in sorted(facts):
        pool = [it for it in facts[group] if it.fact not in excluded]
        rng = rng_for("fact-split", group)
        rng.shuffle(pool)
        n_eval = N_EVAL_FACTS.get(group, 0)
        evaluation += pool[:n_eval]
        rest = pool[n_eval:]
        # In the direction set, ask some capital and symbol facts the other way round, so the set
        # is not one fixed question shape per group. Each fact is still asked only once.
        for it in rest:
            assert it.fact is not None
            if group == "country-capital" and rng.random() < 0.3:
                c = next(c for c in countries if c.stem == it.fact[1])
                base = c.name[4:] if c.name.startswith("the ") else c.name
                extra = [c.name] if c.name != base else []
                it.question = capital_country_q(rng, c)
                it.answer = base
                it.aliases = with_folded(base, extra + COUNTRY_ALIASES.get(base, []))
            elif group == "element-symbol" and rng.random() < 0.5:
                e = next(e for e in elements if e.symbol == it.fact[1])
                it.question, it.answer, it.aliases = symbol_q(rng, e), e.symbol, []
        direction += rest
    return direction, evaluation


# --------------------------------------------------------------------------------------------
# The format-matched set (matched.jsonl)
# --------------------------------------------------------------------------------------------
#
# Both classes use the same sentence frames over the same three fact domains (elements, US
# states, countries) and the same two answer types. A question starts with zero, one or two
# "given" fact sentences ("Neon has atomic number 10.") and ends with one question. In a
# reasoning item the answer follows from the prompt alone (computed from the given numbers,
# letters or order); in a memory item the asked fact is never given (the given facts, if any, are
# about other entities of the same domain). Every memory fact is asked once. Candidates are then
# paired across the classes by length (characters and an approximate token count), so prompt
# length carries almost no label information.

N_MATCHED_PER_TYPE = 150  # pairs per answer type: 300 reasoning + 300 memory items
MATCHED_CHAR_BIN = 8  # characters of the question per length bin
MATCHED_TOKEN_BIN = 3  # approximate tokens per length bin
#: Prompt-character bins every reasoning family fills in equal shares.
MATCHED_COARSE_BINS = (78, 92, 106, 120, 134, 148, 162)
MATCHED_ATTEMPTS = 20_000  # candidate draws per reasoning family
P_LEAD_IN = 0.4  # share of candidates (both classes) that start with a lead-in sentence

#: Neutral openings shared by both classes: they lengthen a question without changing its task.
LEAD_INS = [
    "Quick question. ",
    "One more for the quiz. ",
    "Here is a line from a school worksheet. ",
    "This one comes from a trivia night at the local library. ",
    "A student revising for an exam wrote this question on a flash card. ",
]

_PIECE = re.compile(r"\d|[A-Za-z]+|[^\sA-Za-z\d]")


def approx_tokens(text: str) -> int:
    """A tokenizer-free token count: digits and punctuation marks count one each, words by
    ``(7 * words + letters) / 9``.

    Byte-level BPE tokenizers of small models (SmolLM2's among them) split numbers into single
    digits and keep common words whole while splitting long rare names; this count follows them
    closely enough to pair length bins without making the generator depend on a tokenizer (the
    real SmolLM2 token counts are checked in tests/test_data.py).
    """
    pieces = _PIECE.findall(text)
    words = [p for p in pieces if p.isalpha()]
    return len(pieces) - len(words) + (7 * len(words) + sum(map(len, words))) // 9


def cap1(text: str) -> str:
    """``text`` with its first letter upper-cased ("the Netherlands" -> "The Netherlands")."""
    return text[:1].upper() + text[1:]


def plain_word(word: str) -> bool:
    """A single ASCII word of 4 to 10 letters (letter questions need an unambiguous spelling)."""
    return word.isascii() and word.isalpha() and 4 <= len(word) <= 10


SHORT_NAMES = ["Ava", "Ben", "Dev", "Grace", "Hugo", "Liam", "Maya", "Omar", "Rosa", "Tara", "Vera",
               "Zoe"]  # fmt: skip
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth"}
MULTIPLES = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}

# Given-fact sentences, shared by both classes: one entity, or two in one sentence.


def element_fact(rng: random.Random, e: Element) -> str:
    return rng.choice([f"{cap1(e.name.lower())} has atomic number {e.number}.",
                       f"The atomic number of {e.name.lower()} is {e.number}."])  # fmt: skip


def element_pair(rng: random.Random, a: Element, b: Element) -> str:
    x, y = a.name.lower(), b.name.lower()
    return rng.choice([
        f"{cap1(x)} has atomic number {a.number} and {y} has atomic number {b.number}.",
        f"{cap1(x)} has atomic number {a.number} and {y} has {b.number}.",
        f"The atomic numbers of {x} and {y} are {a.number} and {b.number}.",
    ])  # fmt: skip


def state_fact(rng: random.Random, s: State) -> str:
    return rng.choice([f"{s.name} entered the Union in {s.year}.",
                       f"{s.name} joined the Union in {s.year}."])  # fmt: skip


def state_pair(rng: random.Random, a: State, b: State) -> str:
    return rng.choice([f"{a.name} entered the Union in {a.year} and {b.name} in {b.year}.",
                       f"{a.name} joined the Union in {a.year}, {b.name} in {b.year}."])  # fmt: skip


def code_fact(rng: random.Random, c: Country) -> str:
    return rng.choice([f"The calling code of {c.name} is {c.calling_code}.",
                       f"{cap1(c.name)} has calling code {c.calling_code}."])  # fmt: skip


def code_pair(rng: random.Random, a: Country, b: Country) -> str:
    return rng.choice([
        f"The calling code of {a.name} is {a.calling_code} and that of {b.name} is "
        f"{b.calling_code}.",
        f"The calling codes of {a.name} and {b.name} are {a.calling_code} and {b.calling_code}.",
    ])  # fmt: skip


def capital_fact(rng: random.Random, c: Country) -> str:
    return rng.choice([f"The capital of {c.name} is {c.capital}.",
                       f"{c.capital} is the capital of {c.name}."])  # fmt: skip


def capital_pair(rng: random.Random, a: Country, b: Country) -> str:
    return rng.choice([
        f"The capitals of {a.name} and {b.name} are {a.capital} and {b.capital}.",
        f"The capital of {a.name} is {a.capital} and that of {b.name} is {b.capital}.",
    ])  # fmt: skip


def given_facts(
    rng: random.Random,
    pool: list[Any],
    target: Any,
    k: int,
    one: Callable[[random.Random, Any], str],
    two: Callable[[random.Random, Any, Any], str],
) -> str:
    """``k`` (0-2) given-fact sentences about entities of ``pool`` other than ``target``."""
    others = rng.sample([x for x in pool if x != target], k)
    if k == 0:
        return ""
    return (one(rng, others[0]) if k == 1 else two(rng, others[0], others[1])) + " "


def matched_memory(
    countries: list[Country], elements: list[Element], states: list[State]
) -> list[tuple[Item, tuple[str, str]]]:
    """Memory candidates: several phrasings per fact, each tagged with the fact it asks.

    Each fact is phrased with 0, 1 or 2 given facts about OTHER entities of its domain (so the
    prompt never holds the answer), two question wordings, and once more with a lead-in.
    """
    out: list[tuple[Item, tuple[str, str]]] = []
    pt = (f"periodictable {GENERATORS['periodictable']}", PERIODICTABLE_LICENSE)
    usd = (f"us {GENERATORS['us']}", US_LICENSE)
    ci = f"countryinfo {GENERATORS['countryinfo']}"
    coded = [c for c in countries if c.calling_code is not None]

    for e in elements:
        rng = rng_for("matched", "memory", "element", e.symbol)
        name = e.name.lower()
        for k in (0, 1, 2):
            for ask in (f"What atomic number does {name} have?",
                        f"Which atomic number belongs to {name}?"):  # fmt: skip
                q = given_facts(rng, elements, e, k, element_fact, element_pair) + ask
                out.append((Item(q, str(e.number), "memory", "atomic-number", *pt,
                                 answer_type="number"), ("atomic-number", e.symbol)))  # fmt: skip
            for ask in (f"Which chemical symbol does {name} have?",
                        f"Which symbol is written for {name}?"):  # fmt: skip
                q = given_facts(rng, elements, e, k, element_fact, element_pair) + ask
                out.append((Item(q, e.symbol, "memory", "element-symbol", *pt,
                                 answer_type="text"), ("element-symbol", e.symbol)))  # fmt: skip
    for s in states:
        rng = rng_for("matched", "memory", "state", s.abbr)
        aliases = with_folded(s.capital, ["St. Paul"] if s.capital == "Saint Paul" else [])
        for k in (0, 1, 2):
            for ask in (f"In which year did {s.name} enter the Union?",
                        f"When did {s.name} join the Union? Give the year."):  # fmt: skip
                q = given_facts(rng, states, s, k, state_fact, state_pair) + ask
                out.append((Item(q, str(s.year), "memory", "entry-year", *usd,
                                 answer_type="number"), ("entry-year", s.abbr)))  # fmt: skip
            for ask in (f"Which city is the state capital of {s.name}?",
                        f"What city is the capital of {s.name}?"):  # fmt: skip
                q = given_facts(rng, states, s, k, state_fact, state_pair) + ask
                out.append((Item(q, s.capital, "memory", "state-capital", *usd, aliases,
                                 answer_type="text"), ("state-capital", s.abbr)))  # fmt: skip
    for c in countries:
        rng = rng_for("matched", "memory", "country", c.stem)
        src = ci + (" (corrected by lirefs)" if c.stem in CAPITAL_FIXES else "")
        for k in (0, 1, 2):
            if c.calling_code is not None:
                for ask in (f"What calling code does {c.name} use?",
                            f"Which calling code belongs to {c.name}?"):  # fmt: skip
                    q = given_facts(rng, coded, c, k, code_fact, code_pair) + ask
                    out.append((Item(q, c.calling_code, "memory", "calling-code", ci,
                                     COUNTRYINFO_LICENSE, [f"+{c.calling_code}"],
                                     answer_type="number"), ("calling-code", c.stem)))  # fmt: skip
            for ask in (f"Which city is the capital of {c.name}?",
                        f"What city is {c.name}'s capital?"):  # fmt: skip
                q = given_facts(rng, countries, c, k, capital_fact, capital_pair) + ask
                out.append((Item(q, c.capital, "memory", "country-capital", src,
                                 COUNTRYINFO_LICENSE, list(c.capital_aliases),
                                 answer_type="text"), ("country-capital", c.stem)))  # fmt: skip
    # A given fact may share the asked value (two states admitted the same year): drop those.
    out = [(item, fact) for item, fact in out if not any(
        re.search(rf"(?<!\w){re.escape(a.lower())}(?!\w)", item.question.lower())
        for a in (item.answer, *item.aliases)
    )]  # fmt: skip
    rng = rng_for("matched", "memory", "lead-ins")
    led = [
        (dataclasses.replace(item, question=rng.choice(LEAD_INS) + item.question), fact)
        for item, fact in out
    ]
    return out + led


MatchedTemplate = Callable[[random.Random], tuple[str, str]]


def matched_reasoning(
    countries: list[Country], elements: list[Element], states: list[State]
) -> dict[str, tuple[str, str, str, MatchedTemplate]]:
    """Reasoning families: name -> (answer type, source, licence, template).

    Each template states real facts (or plain numbers and names) in the prompt and returns the
    question with the answer computed from what the prompt says: no hidden recall.
    """
    pt = (f"periodictable {GENERATORS['periodictable']}", PERIODICTABLE_LICENSE)
    usd = (f"us {GENERATORS['us']}", US_LICENSE)
    ci = (f"countryinfo {GENERATORS['countryinfo']}", COUNTRYINFO_LICENSE)
    project = ("template:matched", PROJECT_LICENSE)
    coded = [c for c in countries if c.calling_code is not None]
    worded = [c for c in countries if plain_word(c.capital)]
    two_letter = [e for e in elements if len(e.symbol) == 2]

    def distinct_years(rng: random.Random) -> tuple[State, State]:
        a, b = rng.sample(states, 2)
        while a.year == b.year:
            b = rng.choice(states)
        return a, b

    def atomic_gap(rng: random.Random) -> tuple[str, str]:
        a, b = rng.sample(elements, 2)
        low, high = sorted((a, b), key=lambda e: e.number)
        ask = rng.choice([
            f"By how much is the atomic number of {high.name.lower()} larger than that of "
            f"{low.name.lower()}?",
            "What is the difference between the two atomic numbers?",
            "What is their difference?",
        ])  # fmt: skip
        return f"{element_pair(rng, a, b)} {ask}", str(high.number - low.number)

    def atomic_sum(rng: random.Random) -> tuple[str, str]:
        a, b = rng.sample(elements, 2)
        ask = rng.choice(["What is the sum of the two atomic numbers?", "What is their sum?",
                          "What do the two atomic numbers add up to?"])  # fmt: skip
        return f"{element_pair(rng, a, b)} {ask}", str(a.number + b.number)

    def atomic_multiple(rng: random.Random) -> tuple[str, str]:
        e = rng.choice(elements)
        m = rng.randint(2, 5)
        ask = rng.choice([f"What is {MULTIPLES[m]} that number?",
                          f"What number is {MULTIPLES[m]} as large as that atomic number?"])  # fmt: skip
        return f"{element_fact(rng, e)} {ask}", str(m * e.number)

    def atomic_larger(rng: random.Random) -> tuple[str, str]:
        a, b = rng.sample(elements, 2)
        big, small = sorted((a, b), key=lambda e: -e.number)
        larger = rng.random() < 0.5
        ask = rng.choice(["Which of the two has the {} atomic number?",
                          "Which has the {} number?"]).format("larger" if larger else "smaller")  # fmt: skip
        return f"{element_pair(rng, a, b)} {ask}", cap1((big if larger else small).name.lower())

    def symbol_letter(rng: random.Random) -> tuple[str, str]:
        e = rng.choice(two_letter)
        pos = rng.choice([1, 2])
        ask = rng.choice([f"What is the {ORDINALS[pos]} letter of that symbol?",
                          f"Which letter comes {ORDINALS[pos]} in that chemical symbol?"])  # fmt: skip
        fact = rng.choice([f"The chemical symbol of {e.name.lower()} is {e.symbol}.",
                           f"{cap1(e.name.lower())} has the chemical symbol {e.symbol}."])  # fmt: skip
        return f"{fact} {ask}", e.symbol[pos - 1].upper()

    def year_gap(rng: random.Random) -> tuple[str, str]:
        a, b = distinct_years(rng)
        early, late = sorted((a, b), key=lambda s: s.year)
        ask = rng.choice([f"How many years after {early.name} did {late.name} join?",
                          "How many years apart did the two join?", "How many years apart?",
                          "How many years lie between those two dates?"])  # fmt: skip
        return f"{state_pair(rng, a, b)} {ask}", str(late.year - early.year)

    def year_offset(rng: random.Random) -> tuple[str, str]:
        s = rng.choice(states)  # statehood years run from 1787 to 1959
        if rng.random() < 0.5:
            base = rng.choice([1960, 2000])
            ask = rng.choice([f"How many years before {base} was that?",
                              f"How many years is that before the year {base}?"])  # fmt: skip
            return f"{state_fact(rng, s)} {ask}", str(base - s.year)
        base = rng.choice([1700, 1750])
        ask = rng.choice([f"How many years after {base} was that?",
                          f"How many years is that after the year {base}?"])  # fmt: skip
        return f"{state_fact(rng, s)} {ask}", str(s.year - base)

    def year_first(rng: random.Random) -> tuple[str, str]:
        a, b = distinct_years(rng)
        early, late = sorted((a, b), key=lambda s: s.year)
        first = rng.random() < 0.5
        ask = rng.choice(["Which of the two joined the Union {}?",
                          "Which state joined {}?"]).format("first" if first else "later")  # fmt: skip
        return f"{state_pair(rng, a, b)} {ask}", (early if first else late).name

    def code_sum(rng: random.Random) -> tuple[str, str]:
        a, b = rng.sample(coded, 2)
        ask = rng.choice(["What is the sum of the two codes?", "What is their sum?",
                          "What do the two codes add up to?"])  # fmt: skip
        total = int(a.calling_code or 0) + int(b.calling_code or 0)
        return f"{code_pair(rng, a, b)} {ask}", str(total)

    def name_length(rng: random.Random) -> tuple[str, str]:
        c = rng.choice(worded)
        n = str(len(c.capital))
        if rng.random() < 0.5:
            return f"{capital_fact(rng, c)} How many letters does that city's name have?", n
        return rng.choice([f"How many letters are in the word {c.capital}?",
                           f"How many letters does the name {c.capital} have?"]), n  # fmt: skip

    def capital_letter(rng: random.Random) -> tuple[str, str]:
        c = rng.choice(worded)
        which, letter = rng.choice([("first", c.capital[0]), ("last", c.capital[-1])])
        if rng.random() < 0.5:
            return (
                f"{capital_fact(rng, c)} What is the {which} letter of that city's name?",
                letter.upper(),
            )
        return f"What is the {which} letter of the word {c.capital}?", letter.upper()

    def alphabetical(rng: random.Random) -> tuple[str, str]:
        a, b = rng.sample(worded, 2)
        while a.capital[0] == b.capital[0]:
            b = rng.choice(worded)
        first = min(a.capital, b.capital)
        if rng.random() < 0.5:
            ask = rng.choice(["Which of the two cities comes first in alphabetical order?",
                              "Which city comes first alphabetically?"])  # fmt: skip
            return f"{capital_pair(rng, a, b)} {ask}", first
        return f"Which comes first in alphabetical order, {a.capital} or {b.capital}?", first

    def plain_sum(rng: random.Random) -> tuple[str, str]:
        a, b = rng.randint(12, 989), rng.randint(12, 989)
        name = rng.choice(NAMES)
        return rng.choice([
            f"What is {a} plus {b}?",
            f"What number do you get when you add {a} and {b}?",
            f"{name} has {a} stamps and is given {b} more. How many stamps does {name} have now?",
            f"A library had {a} books and bought {b} more this year. How many books does it have?",
        ]), str(a + b)  # fmt: skip

    def plain_product(rng: random.Random) -> tuple[str, str]:
        a, b = rng.randint(3, 19), rng.randint(3, 49)
        return rng.choice([
            f"What is {a} times {b}?",
            f"What is the product of {a} and {b}?",
            f"A theatre has {a} rows with {b} seats in each row. How many seats does it have?",
            f"A crate holds {a} boxes and each box holds {b} apples. How many apples are there?",
        ]), str(a * b)  # fmt: skip

    def age_order(rng: random.Random) -> tuple[str, str]:
        a, b, c, d = rng.sample(SHORT_NAMES, 4)
        return rng.choice([
            (f"{a} is older than {b}, and {b} is older than {c}. Who is the youngest?", c),
            (f"{a} is taller than {b}, and {c} is taller than {a}. Who is the tallest?", c),
            (f"{a} finished before {b}, {b} before {c}, and {c} before {d}. Who finished last?", d),
            (f"{a} is older than {b}, {c} is younger than {b}, and {d} is older than {a}. Who is "
             "the youngest of the four?", c),
        ])  # fmt: skip

    return {
        "atomic-gap": ("number", *pt, atomic_gap),
        "atomic-sum": ("number", *pt, atomic_sum),
        "atomic-multiple": ("number", *pt, atomic_multiple),
        "year-gap": ("number", *usd, year_gap),
        "year-offset": ("number", *usd, year_offset),
        "code-sum": ("number", *ci, code_sum),
        "name-length": ("number", *ci, name_length),
        "plain-sum": ("number", *project, plain_sum),
        "plain-product": ("number", *project, plain_product),
        "atomic-larger": ("text", *pt, atomic_larger),
        "symbol-letter": ("text", *pt, symbol_letter),
        "year-first": ("text", *usd, year_first),
        "capital-letter": ("text", *ci, capital_letter),
        "alphabetical": ("text", *ci, alphabetical),
        "age-order": ("text", *project, age_order),
    }


def coarse_bin(text: str) -> int | None:
    """Index of the prompt's character count in ``MATCHED_COARSE_BINS`` (None outside them)."""
    n = len("Q: " + text + "\nA: ")
    for b in range(len(MATCHED_COARSE_BINS) - 1):
        if MATCHED_COARSE_BINS[b] <= n < MATCHED_COARSE_BINS[b + 1]:
            return b
    return None


def length_key(text: str) -> tuple[int, int]:
    """The length bin of a question: (characters, approximate tokens of the whole prompt)."""
    prompt = "Q: " + text + "\nA: "
    return len(prompt) // MATCHED_CHAR_BIN, approx_tokens(prompt) // MATCHED_TOKEN_BIN


def _matched_pair(
    name: str,
    family: tuple[str, str, str, MatchedTemplate],
    gen: random.Random,
    quota: list[int],
    pools: dict[tuple[str, tuple[int, int]], list[tuple[Item, tuple[str, str]]]],
    used_facts: set[tuple[str, str]],
    seen: set[str],
) -> tuple[Item, Item]:
    """One reasoning item of ``family`` in a coarse bin with quota left, and its memory partner."""
    answer_type, source, license_, template = family
    for _attempt in range(MATCHED_ATTEMPTS):
        question, answer = template(gen)
        if gen.random() < P_LEAD_IN:
            question = gen.choice(LEAD_INS) + question
        b = coarse_bin(question)
        if question in seen or b is None or quota[b] == 0:
            continue
        pool = pools.get((answer_type, length_key(question)), [])
        while pool and pool[0][1] in used_facts:
            pool.pop(0)
        if not pool:
            continue
        if (re.fullmatch(r"\d+", answer) is not None) != (answer_type == "number"):
            raise AssertionError(f"family {name!r} gave answer {answer!r}, not {answer_type}")
        partner, fact = pool.pop(0)
        used_facts.add(fact)
        seen.update((question, partner.question))
        quota[b] -= 1
        item = Item(question, answer, "reasoning", name, source, license_, answer_type=answer_type)
        return item, partner
    raise RuntimeError(
        f"matched set: family {name!r} found no length-matched item for the bins left {quota} "
        f"in {MATCHED_ATTEMPTS} draws; add phrasings or memory candidates"
    )


def make_matched(seen: set[str]) -> list[Item]:
    """Reasoning and memory items with the same length distribution in every template family.

    1. Every reasoning family gets the same share of its items in each coarse character bin
       (``MATCHED_COARSE_BINS``), so whichever families the group split holds out, the held-out
       reasoning side has the length distribution of the whole set.
    2. Each reasoning item is paired with an unused memory candidate of the same answer type and
       fine length bin (``length_key``: characters and approximate tokens), memory groups taken
       in rotation, so the memory side follows the reasoning side bin by bin.

    Every memory fact is asked at most once; question texts in ``seen`` (the other files) are
    skipped. Both classes draw their optional lead-in sentence from the same ``LEAD_INS``.
    """
    countries, elements, states = read_countries(), read_elements(), read_states()
    memory = matched_memory(countries, elements, states)
    families = matched_reasoning(countries, elements, states)
    rng = rng_for("matched", "pairing")
    rng.shuffle(memory)
    # Memory candidates by (answer type, fine bin), groups interleaved so no group fills a bin.
    pools: dict[tuple[str, tuple[int, int]], list[tuple[Item, tuple[str, str]]]] = {}
    for item, fact in sorted(memory, key=lambda m: m[0].group):  # stable: keeps shuffled order
        if item.question in seen:
            continue
        assert item.answer_type is not None
        pools.setdefault((item.answer_type, length_key(item.question)), []).append((item, fact))
    for key, pool in pools.items():
        by_group: dict[str, list[tuple[Item, tuple[str, str]]]] = {}
        for entry in pool:
            by_group.setdefault(entry[0].group, []).append(entry)
        queues = [by_group[g] for g in sorted(by_group)]
        pools[key] = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    used_facts: set[tuple[str, str]] = set()
    reasoning: list[Item] = []
    chosen_memory: list[Item] = []
    n_bins = len(MATCHED_COARSE_BINS) - 1
    for answer_type in ("number", "text"):
        names = sorted(n for n, spec in families.items() if spec[0] == answer_type)
        gens = {n: rng_for("matched", "reasoning", n) for n in names}
        quotas = {}
        for i, name in enumerate(names):
            n_family = N_MATCHED_PER_TYPE // len(names) + (i < N_MATCHED_PER_TYPE % len(names))
            quota = [n_family // n_bins + (b < n_family % n_bins) for b in range(n_bins)]
            quotas[name] = quota[::-1] if gens[name].random() < 0.5 else quota
        # Families take one pair each per round, so none uses up the memory candidates of a bin.
        while any(sum(q) for q in quotas.values()):
            for name in names:
                if sum(quotas[name]):
                    pair = _matched_pair(name, families[name], gens[name], quotas[name], pools,
                                         used_facts, seen)  # fmt: skip
                    reasoning.append(pair[0])
                    chosen_memory.append(pair[1])
    return reasoning + chosen_memory


# --------------------------------------------------------------------------------------------
# The reasoning ladder (eval_ladder.jsonl, fewshot_ladder.jsonl): benchmark builtin-ladder
# --------------------------------------------------------------------------------------------
#
# Seven rungs of graded difficulty, so that a small model scores well above the floor on the low
# rungs and lower on the high ones: word problems of 1, 2, 3 and 4 steps (each step adds or
# takes away a number from 1 to 9; every value along the way stays a positive integer) and bare
# sums of a 1-digit and a 1-digit, a 2-digit and a 1-digit, and two 2-digit numbers. The item's
# rung is its ``group``. Each rung has its own exemplars, drawn first from the same generator
# and kept out of the scored items (no shared question text; for bare sums no shared pair of
# numbers either), with a worked solution ("6 + 3 = 9. 9 - 2 = 7. The final answer is 7.").
# The word-problem frames are new: none is a direction-set template (tests/evaluation/tasks/test_ladder.py
# checks texts, sentence skeletons and word 4-grams against reasoning.jsonl).

N_LADDER_PER_RUNG = 200  # scored items per rung
N_LADDER_SHOTS = 8  # exemplars per rung (the benchmark is 8-shot, exemplars from the same rung)
LADDER_STEP_RUNGS = (1, 2, 3, 4)
LADDER_SUM_RUNGS = {"sum-1+1": ((1, 9), (1, 9)), "sum-2+1": ((10, 99), (1, 9)),
                    "sum-2+2": ((10, 99), (10, 99))}  # fmt: skip

# (name, subject pronoun, object pronoun, possessive)
LADDER_PEOPLE = [
    ("Jack", "he", "him", "his"), ("Mia", "she", "her", "her"), ("Leo", "he", "him", "his"),
    ("Nora", "she", "her", "her"), ("Sam", "he", "him", "his"), ("Lily", "she", "her", "her"),
    ("Max", "he", "him", "his"), ("Ruby", "she", "her", "her"), ("Oscar", "he", "him", "his"),
    ("Chloe", "she", "her", "her"), ("Theo", "he", "him", "his"), ("Isla", "she", "her", "her"),
    ("Felix", "he", "him", "his"), ("Hana", "she", "her", "her"), ("Kofi", "he", "him", "his"),
    ("Anya", "she", "her", "her"), ("Luca", "he", "him", "his"), ("Sofia", "she", "her", "her"),
    ("Arjun", "he", "him", "his"), ("Emma", "she", "her", "her"),
]  # fmt: skip
LADDER_THINGS = [
    "stickers", "marbles", "pencils", "shells", "buttons", "coins", "beads", "crayons", "cards",
    "badges", "blocks", "feathers", "toy cars", "erasers", "pebbles", "ribbons",
]  # fmt: skip
LADDER_HOLDERS = ["jar", "box", "bag", "basket", "drawer", "tin", "bucket"]
LADDER_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
LADDER_RELATIVES = ["sister", "brother", "aunt", "uncle", "friend", "teacher", "cousin", "grandma"]


def _people(rng: random.Random, k: int) -> list[dict[str, str]]:
    """``k`` different people as format fields: name, he, him, his and their capitalised forms."""
    out = []
    for name, he, him, his in rng.sample(LADDER_PEOPLE, k):
        out.append({"name": name, "he": he, "him": him, "his": his, "He": he.capitalize(),
                    "His": his.capitalize()})  # fmt: skip
    return out


def ladder_steps(rng: random.Random, n_steps: int) -> tuple[int, list[tuple[str, int]]]:
    """A start value (2-9) and ``n_steps`` operations ``("+" | "-", 1-9)``; a subtraction always
    leaves at least 1, so every value along the way is a positive integer."""
    value = rng.randint(2, 9)
    start, ops = value, []
    for _ in range(n_steps):
        if value >= 2 and rng.random() < 0.5:
            b = rng.randint(1, min(9, value - 1))
            value -= b
            ops.append(("-", b))
        else:
            b = rng.randint(1, 9)
            value += b
            ops.append(("+", b))
    return start, ops


def ladder_working(start: int, ops: list[tuple[str, int]]) -> tuple[str, int]:
    """The worked solution ``"6 + 3 = 9. 9 - 2 = 7. The final answer is 7."`` and the answer."""
    value, parts = start, []
    for op, b in ops:
        new = value + b if op == "+" else value - b
        parts.append(f"{value} {op} {b} = {new}.")
        value = new
    return " ".join(parts) + f" The final answer is {value}.", value


def frame_owner(rng: random.Random, start: int, ops: list[tuple[str, int]]) -> str:
    """Present tense, one owner: "Jack has 6 stickers. He finds 3 more. Then he loses 2." """
    p, other = _people(rng, 2)
    fields = {**p, "other": other["name"], "rel": rng.choice(LADDER_RELATIVES),
              "things": rng.choice(LADDER_THINGS)}  # fmt: skip
    gain = ["{s} finds {b} more.", "{s} buys {b} more.", "{s} wins {b} more.",
            "{His} {rel} gives {him} {b} more.", "{other} gives {him} {b} more."]  # fmt: skip
    loss = ["{s} loses {b}.", "{s} gives away {b}.", "{s} gives {b} to {other}.",
            "{s} trades away {b}."]  # fmt: skip
    sentences = ["{name} has {start} {things}.".format(start=start, **fields)]
    for i, (op, b) in enumerate(ops):
        subject = p["He"] if i == 0 or rng.random() < 0.5 else "Then " + p["he"]
        sentences.append(rng.choice(gain if op == "+" else loss).format(s=subject, b=b, **fields))
    ask = rng.choice(["How many {things} does {name} have now?",
                      "How many {things} does {he} have now?"])  # fmt: skip
    return " ".join([*sentences, ask.format(**fields)])


def frame_days(rng: random.Random, start: int, ops: list[tuple[str, int]]) -> str:
    """Past tense, one day per step: "On Monday Mia had 6 shells. On Tuesday she found 3 more." """
    (p,) = _people(rng, 1)
    things = rng.choice(LADDER_THINGS)
    first = rng.randint(0, len(LADDER_DAYS) - 1 - len(ops))
    days = LADDER_DAYS[first : first + len(ops) + 1]
    gain = ["found {b} more", "got {b} more", "was given {b} more", "bought {b} more"]
    loss = ["lost {b}", "gave away {b}", "gave {b} to a friend", "swapped {b} for a comic"]
    sentences = [f"On {days[0]} {p['name']} had {start} {things}."]
    for day, (op, b) in zip(days[1:], ops, strict=True):
        did = rng.choice(gain if op == "+" else loss).format(b=b)
        sentences.append(f"On {day} {p['he']} {did}.")
    sentences.append(f"How many {things} did {p['name']} have at the end of {days[-1]}?")
    return " ".join(sentences)


def frame_holder(rng: random.Random, start: int, ops: list[tuple[str, int]]) -> str:
    """A container several people put into and take out of: "There are 6 beads in a jar." """
    people = _people(rng, 3)
    things = rng.choice(LADDER_THINGS)
    holder = rng.choice(LADDER_HOLDERS)
    opening = rng.choice(["There are {n} {t} in a {h}.", "A {h} holds {n} {t}."])
    sentences = [opening.format(n=start, t=things, h=holder)]
    gain = ["{who} puts {b} more in.", "{who} adds {b} more.", "{who} drops in {b} more."]
    loss = ["{who} takes {b} out.", "{who} removes {b}.", "{who} takes out {b}."]
    for op, b in ops:
        who = rng.choice(people)["name"]
        sentences.append(rng.choice(gain if op == "+" else loss).format(who=who, b=b))
    sentences.append(f"How many {things} are in the {holder} now?")
    return " ".join(sentences)


def frame_game(rng: random.Random, start: int, ops: list[tuple[str, int]]) -> str:
    """Points in a game: "Leo starts a quiz with 6 points. He scores 3 more points." """
    (p,) = _people(rng, 1)
    units = rng.choice([("points", "point"), ("tokens", "token"), ("stars", "star"),
                        ("gems", "gem")])  # fmt: skip
    unit = units[0]
    game = rng.choice(["board game", "card game", "quiz", "video game"])
    gain = ["{s} earns {b} {u}.", "{s} scores {b} more {u}.", "{s} picks up {b} {u}."]
    loss = ["{s} loses {b} {u}.", "{s} pays {b} {u}.", "{s} spends {b} {u}."]
    sentences = [f"{p['name']} starts a {game} with {start} {unit}."]
    for i, (op, b) in enumerate(ops):
        subject = "Next " + p["he"] if i and rng.random() < 0.5 else p["He"]
        said = rng.choice(gain if op == "+" else loss)
        sentences.append(said.format(s=subject, b=b, u=units[b == 1]))
    ask = rng.choice(["How many {u} does {name} have now?", "How many {u} does {he} end up with?"])
    return " ".join([*sentences, ask.format(u=unit, **p)])


LADDER_FRAMES: dict[str, Callable[[random.Random, int, list[tuple[str, int]]], str]] = {
    "owner": frame_owner,
    "days": frame_days,
    "holder": frame_holder,
    "game": frame_game,
}

SUM_FRAMES = {
    "plus-sign": "What is {a} + {b}?",
    "calculate": "Calculate {a} + {b}.",
    "add": "Add {a} and {b}.",
    "sum-of": "What is the sum of {a} and {b}?",
    "total": "Find the total of {a} and {b}.",
}


@dataclass
class LadderDraw:
    question: str
    answer: int
    solution: str
    frame: str
    key: tuple[int, ...]  # the numbers: bare-sum exemplars and items never share them


def ladder_draw(rung: str, rng: random.Random, n: int) -> LadderDraw:
    """The ``n``-th draw of a rung (frames taken in turn, so each is a fair share of the rung)."""
    if rung.startswith("steps-"):
        start, ops = ladder_steps(rng, int(rung.removeprefix("steps-")))
        frame = list(LADDER_FRAMES)[n % len(LADDER_FRAMES)]
        solution, answer = ladder_working(start, ops)
        question = LADDER_FRAMES[frame](rng, start, ops)
        return LadderDraw(question, answer, solution, frame, (start, *(b for _, b in ops)))
    (lo_a, hi_a), (lo_b, hi_b) = LADDER_SUM_RUNGS[rung]
    a, b = rng.randint(lo_a, hi_a), rng.randint(lo_b, hi_b)
    frame = list(SUM_FRAMES)[n % len(SUM_FRAMES)]
    solution = f"{a} + {b} = {a + b}. The final answer is {a + b}."
    return LadderDraw(SUM_FRAMES[frame].format(a=a, b=b), a + b, solution, frame, (a, b))


def make_ladder(seen: set[str]) -> tuple[list[Item], list[dict[str, Any]]]:
    """Scored ladder items (``N_LADDER_PER_RUNG`` per rung) and exemplar records (8 per rung).

    The exemplars are the first distinct draws of each rung's generator; the items follow and
    skip every text already used anywhere (``seen``) and, on the bare-sum rungs, every pair of
    numbers an exemplar uses.
    """
    rungs = [f"steps-{k}" for k in LADDER_STEP_RUNGS] + list(LADDER_SUM_RUNGS)
    items: list[Item] = []
    shots: list[dict[str, Any]] = []
    for rung in rungs:
        rng = rng_for("ladder", rung)
        shot_keys: set[tuple[int, ...]] = set()
        n_shots = n_items = attempts = 0
        while n_items < N_LADDER_PER_RUNG:
            attempts += 1
            if attempts > 20_000:
                raise RuntimeError(f"ladder rung {rung!r} cannot produce enough distinct items")
            draw = ladder_draw(rung, rng, n_shots + n_items)
            if draw.question in seen or draw.answer < 0:
                continue
            if n_shots < N_LADDER_SHOTS:
                if rung.startswith("sum-") and draw.key in shot_keys:
                    continue
                seen.add(draw.question)
                shot_keys.add(draw.key)
                n_shots += 1
                shots.append({"id": f"fewshot-ladder-{rung}-{n_shots}", "question": draw.question,
                              "solution": draw.solution, "answer": str(draw.answer), "group": rung,
                              "source": f"template:ladder-{draw.frame}",
                              "license": PROJECT_LICENSE})  # fmt: skip
                continue
            if rung.startswith("sum-") and draw.key in shot_keys:
                continue
            seen.add(draw.question)
            n_items += 1
            items.append(Item(draw.question, str(draw.answer), "reasoning", rung,
                              f"template:ladder-{draw.frame}", PROJECT_LICENSE))  # fmt: skip
    return items, shots


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

ID_PREFIX = {
    "reasoning.jsonl": "reason",
    "memory.jsonl": "memory",
    "eval_arithmetic.jsonl": "eval-arith",
    "eval_facts.jsonl": "eval-fact",
    "matched.jsonl": "matched",
    "eval_ladder.jsonl": "ladder",
}


def numbered(items: list[Item], prefix: str) -> list[dict[str, Any]]:
    """Records with ids ``{prefix}-{group}-{nnn}`` numbered within each group in file order."""
    counters: dict[str, int] = {}
    records = []
    for it in items:
        counters[it.group] = counters.get(it.group, 0) + 1
        records.append(it.record(f"{prefix}-{it.group}-{counters[it.group]:03d}"))
    return records


def to_jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def check_disjoint(named: dict[str, list[dict[str, Any]]]) -> None:
    """Refuse to write if any question text appears twice across all files."""
    seen: dict[str, str] = {}
    for fname, records in named.items():
        for r in records:
            if r["question"] in seen:
                raise AssertionError(
                    f"question {r['question']!r} appears in {seen[r['question']]} and {fname}"
                )
            seen[r["question"]] = fname


def license_notices() -> dict[str, dict[str, str]]:
    """Licence of each fact source, with the verbatim licence text its distribution ships.

    MIT and BSD-3-Clause ask that the copyright notice and licence text travel with substantial
    copies of the data, so the frozen files carry them in ``manifest.json``.
    """
    notices = {}
    for pkg, spdx, license_file in (
        ("countryinfo", "MIT", "licenses/LICENSE"),
        ("us", "BSD-3-Clause", "licenses/LICENSE"),
    ):
        text = importlib.metadata.distribution(pkg).read_text(license_file)
        if not text:
            raise SystemExit(f"{pkg}: licence file {license_file} not found in its distribution")
        notices[pkg] = {"license": spdx, "text": text}
    notices["periodictable"] = {
        "license": "public domain",
        "text": "Periodictable is in the public domain. (First line of periodictable 2.1.0's "
        "LICENSE.txt; the rest of that file concerns code files, not the element data used here.)",
    }
    notices["project"] = {
        "license": "Apache-2.0",
        "text": "Question templates, question texts, arithmetic problems and few-shot exemplars "
        "were written for lirefs and are released under the Apache License 2.0, like lirefs.",
    }
    return notices


def generate(out_dir: Path) -> dict[str, Any]:
    """Write every built-in file into ``out_dir`` and return the manifest (also written)."""
    for pkg, ver in GENERATORS.items():
        have = importlib.metadata.version(pkg)
        if have != ver:
            raise SystemExit(f"{pkg}=={have} is installed, but the frozen sets need {pkg}=={ver}; "
                             f"run: pip install {pkg}=={ver}")  # fmt: skip
    reasoning, eval_arith = make_arithmetic()
    memory, eval_facts = make_facts()
    named = {
        "reasoning.jsonl": numbered(reasoning, ID_PREFIX["reasoning.jsonl"]),
        "memory.jsonl": numbered(memory, ID_PREFIX["memory.jsonl"]),
        "eval_arithmetic.jsonl": numbered(eval_arith, ID_PREFIX["eval_arithmetic.jsonl"]),
        "eval_facts.jsonl": numbered(eval_facts, ID_PREFIX["eval_facts.jsonl"]),
        "fewshot_arithmetic.jsonl": [
            {"id": f"fewshot-arith-{i + 1}", "question": q, "solution": s, "answer": a,
             "license": PROJECT_LICENSE}
            for i, (q, s, a) in enumerate(FEWSHOT_ARITHMETIC)
        ],
        "fewshot_facts.jsonl": [
            {"id": f"fewshot-fact-{i + 1}", "question": q, "solution": s, "answer": a,
             "license": PROJECT_LICENSE}
            for i, (q, s, a, _) in enumerate(FEWSHOT_FACTS)
        ],
    }  # fmt: skip
    named["matched.jsonl"] = numbered(
        make_matched({r["question"] for records in named.values() for r in records}),
        ID_PREFIX["matched.jsonl"],
    )
    # After the matched set, whose draws skip the texts of the files made before it.
    ladder, ladder_shots = make_ladder({r["question"] for rs in named.values() for r in rs})
    named["eval_ladder.jsonl"] = numbered(ladder, ID_PREFIX["eval_ladder.jsonl"])
    named["fewshot_ladder.jsonl"] = ladder_shots
    check_disjoint(named)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for fname in FILES:
        text = to_jsonl(named[fname])
        (out_dir / fname).write_text(text, encoding="utf-8", newline="\n")
        files[fname] = {
            "items": len(named[fname]),
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        }
    manifest = {
        "generator": "scripts/make_builtin_data.py",
        "seed": SEED,
        "generator_packages": GENERATORS,
        "licenses": license_notices(),
        "files": files,
    }
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n"
    )
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument(
        "--check", action="store_true", help="regenerate into a temp dir and compare with --out"
    )
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            bad = [
                f for f in (*FILES, "manifest.json")
                if (Path(tmp) / f).read_bytes() != (args.out / f).read_bytes()
            ]  # fmt: skip
        if bad:
            print(f"differ from a fresh generation: {', '.join(bad)}", file=sys.stderr)
            return 1
        print(f"{args.out}: identical to a fresh generation")
        return 0
    manifest = generate(args.out)
    for fname, info in manifest["files"].items():
        print(f"{fname}: {info['items']} items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
