"""Questions: the built-in sets, user files, prompt formatting, and leak-free splits.

The direction is a difference of class means (docs/method.md, "The direction"), so everything
downstream depends on two lists of questions: reasoning-heavy (label ``"reasoning"``) and
memory-heavy (label ``"memory"``). This module provides them as a :class:`QuestionSets` and turns them into prompts::

    sets = lirefs.data.load("builtin")          # 504 arithmetic problems, 586 fact questions
    train, test = sets.split(test_fraction=0.3, seed=0)
    prompts = train.reasoning_prompts()          # "Q: <question>\\nA: " (the paper's format)

Sources for :func:`load`:

- ``"builtin"``: frozen JSONL shipped in ``lirefs/builtin/`` (made once by
  ``scripts/make_builtin_data.py``): multi-step arithmetic word problems from 28 project-written
  templates, and factual recall over countryinfo, periodictable and us data. See docs/data.md.
- ``"builtin-matched"``: 300 + 300 questions of the same surface form and answer type in both
  classes (frozen ``lirefs/builtin/matched.jsonl``): short numeric and text questions over the same
  facts, solvable from the prompt (reasoning) or only from memory (memory), matched in length.
- a path to a ``.jsonl`` or ``.csv`` file with a text column and a label column.
- ``"reasoning-gym"``: GSM-Symbolic problems from the optional ``reasoning-gym`` package, paired
  with the built-in memory questions.

The built-in evaluation items and exemplars (disjoint from the direction sets) are evaluation's:
``lirefs.evaluation.tasks.builtin.load_eval``.

This module imports only the standard library and ``lirefs.errors`` / ``lirefs.store`` (no pandas,
no torch): the data files are small and their formats simple.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import math
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataError
from .store import hash_texts
from .tables import delimited_rows, jsonl_lines, read_text

__all__ = [
    "MEMORY",
    "REASONING",
    "Question",
    "QuestionSets",
    "answer_type",
    "check_matched",
    "format_prompt",
    "load",
]

REASONING = "reasoning"
MEMORY = "memory"

#: Answer types of a matched set (see :func:`answer_type`).
NUMBER, TEXT = "number", "text"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")

#: The optional reasoning-gym release the ``"reasoning-gym"`` source was written against.
REASONING_GYM_PIN = "reasoning-gym==0.1.25"

# GSM-Symbolic appends this instruction to every question; it is a format cue only the reasoning
# class would carry, so it is removed (see ``_load_reasoning_gym``).
_GSM_SYMBOLIC_SUFFIX = " Give the result as your final answer. Do not include units."

_JSONL_SUFFIXES = {".jsonl", ".ndjson"}
_CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}


@dataclass(frozen=True)
class Question:
    """One labelled question.

    Attributes:
        text: the question alone, without the ``"Q: "`` / ``"\\nA: "`` frame (see
            :func:`format_prompt`).
        answer: the canonical answer ("" when the source has none).
        label: ``"reasoning"`` or ``"memory"``.
        id: stable identifier, e.g. ``"reason-rate-003"``.
        group: template id (arithmetic) or fact type (facts); splits keep groups apart.
        source: where the item comes from, e.g. ``"template:rate"`` or ``"countryinfo 1.0.1"``.
        license: licence of the item, e.g. ``"MIT (countryinfo)"``.
        aliases: other accepted answers (UK spellings, co-capitals, "+33" for "33").
    """

    text: str
    answer: str
    label: str
    id: str
    group: str
    source: str
    license: str
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.label not in (REASONING, MEMORY):
            raise DataError(
                f"question {self.id!r} has label {self.label!r}; expected 'reasoning' or 'memory'"
            )
        if not self.text.strip():
            raise DataError(f"question {self.id!r} has empty text; every question needs text")
        object.__setattr__(self, "aliases", tuple(self.aliases))

    @property
    def answers(self) -> tuple[str, ...]:
        """The canonical answer followed by its aliases (what an answer checker accepts)."""
        return (self.answer, *self.aliases) if self.answer else tuple(self.aliases)


def format_prompt(question: str, *, chat_template: bool = False, tokenizer: Any = None) -> str:
    """The prompt a question is read under.

    By default the paper's plain format ``"Q: " + question + "\\nA: "`` (docs/method.md), with no
    chat template, so states are comparable to the paper's. With ``chat_template=True`` the
    question becomes the single user message of ``tokenizer.apply_chat_template`` with the
    assistant turn opened (``add_generation_prompt=True``), for instruction-tuned models.

    Raises:
        DataError: ``chat_template=True`` without a tokenizer, or a tokenizer with no chat template.
    """
    if not chat_template:
        return "Q: " + question + "\nA: "
    if tokenizer is None:
        raise DataError(
            "format_prompt(chat_template=True) needs the model's tokenizer, got tokenizer=None; "
            "pass tokenizer=model.tokenizer, or use chat_template=False for the paper's format"
        )
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
    except (
        Exception
    ) as exc:  # jinja raises SecurityError, TemplateError, TypeError, OverflowError...
        name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
        raise DataError(
            f"tokenizer {name!r} cannot apply a chat template ({exc}); use chat_template=False "
            "(the paper's 'Q: ...\\nA: ' format) or a tokenizer that defines a chat template"
        ) from exc
    if not isinstance(text, str):
        raise DataError(
            f"tokenizer.apply_chat_template returned {type(text).__name__}, expected str; "
            "use a tokenizer whose apply_chat_template supports tokenize=False"
        )
    return text


def _prompts(questions: Iterable[Question], chat_template: bool, tokenizer: Any) -> list[str]:
    return [
        format_prompt(q.text, chat_template=chat_template, tokenizer=tokenizer) for q in questions
    ]


@dataclass(frozen=True)
class QuestionSets:
    """Reasoning and memory questions, kept as two ordered tuples.

    Both classes must be non-empty (a direction is a difference of two means). Lists given to the
    constructor are stored as tuples.
    """

    reasoning: tuple[Question, ...]
    memory: tuple[Question, ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasoning", tuple(self.reasoning))
        object.__setattr__(self, "memory", tuple(self.memory))
        if not self.reasoning or not self.memory:
            raise DataError(
                f"question set {self.name!r} has {len(self.reasoning)} reasoning and "
                f"{len(self.memory)} memory questions; both classes are needed to compute a "
                "direction, so give at least one question of each"
            )
        for expected, questions in ((REASONING, self.reasoning), (MEMORY, self.memory)):
            wrong = next((q for q in questions if q.label != expected), None)
            if wrong is not None:
                raise DataError(
                    f"question {wrong.id!r} with label {wrong.label!r} is in the {expected} "
                    f"tuple of {self.name!r}; put it in the tuple matching its label"
                )

    @classmethod
    def from_texts(
        cls, reasoning: Sequence[str], memory: Sequence[str], *, name: str = "custom"
    ) -> QuestionSets:
        """Question sets from two plain lists of question texts (no answers, no groups).

        Each question becomes its own group, so :meth:`split` is a plain item-level split.
        """

        def make(texts: Sequence[str], label: str, tag: str) -> list[Question]:
            if isinstance(texts, str):
                raise DataError(
                    f"{label} questions must be a list of strings, got one string "
                    f"{texts[:40]!r}; wrap it in a list"
                )
            out = []
            for i, t in enumerate(texts):
                qid = f"{name}-{tag}-{i + 1}"
                if not isinstance(t, str):
                    raise DataError(
                        f"{label} question {i + 1} is {type(t).__name__} {t!r}, expected a string"
                    )
                out.append(Question(t, "", label, qid, qid, "user list", "unknown (user-supplied)"))
            return out

        return cls(tuple(make(reasoning, REASONING, "r")), tuple(make(memory, MEMORY, "m")), name)

    def __len__(self) -> int:
        return len(self.reasoning) + len(self.memory)

    def reasoning_prompts(self, chat_template: bool = False, tokenizer: Any = None) -> list[str]:
        """Prompts of the reasoning questions, in order (see :func:`format_prompt`)."""
        return _prompts(self.reasoning, chat_template, tokenizer)

    def memory_prompts(self, chat_template: bool = False, tokenizer: Any = None) -> list[str]:
        """Prompts of the memory questions, in order (see :func:`format_prompt`)."""
        return _prompts(self.memory, chat_template, tokenizer)

    def prompts(
        self, chat_template: bool = False, tokenizer: Any = None
    ) -> tuple[list[str], list[int]]:
        """All prompts (reasoning first, then memory) and their labels: 1 reasoning, 0 memory."""
        texts = self.reasoning_prompts(chat_template, tokenizer)
        texts += self.memory_prompts(chat_template, tokenizer)
        return texts, [1] * len(self.reasoning) + [0] * len(self.memory)

    def hash(self) -> str:
        """A stable 16-hex-digit hash of the labels and texts, in order.

        ``lirefs.store.hash_texts`` over ``label + "\\n" + text`` for every reasoning question and
        then every memory question, with the extra string ``"lirefs.data.QuestionSets/v1"``.
        Answers, ids, groups and the prompt format do not enter it: it identifies which questions
        built a direction, and it changes when a question, its label or the order changes.
        """
        return hash_texts(
            (f"{q.label}\n{q.text}" for q in (*self.reasoning, *self.memory)),
            "lirefs.data.QuestionSets/v1",
        )

    def describe(self) -> dict[str, Any]:
        """Counts for reports and artifact metadata (JSON-serialisable).

        Keys: ``name``, ``hash``, ``n_reasoning``, ``n_memory``, ``reasoning_groups`` and
        ``memory_groups`` (questions per group, in order of first appearance), ``sources`` and
        ``licenses`` (questions per value).
        """
        everything = (*self.reasoning, *self.memory)
        return {
            "name": self.name,
            "hash": self.hash(),
            "n_reasoning": len(self.reasoning),
            "n_memory": len(self.memory),
            "reasoning_groups": dict(Counter(q.group for q in self.reasoning)),
            "memory_groups": dict(Counter(q.group for q in self.memory)),
            "sources": dict(Counter(q.source for q in everything)),
            "licenses": dict(Counter(q.license for q in everything)),
        }

    def split(self, test_fraction: float = 0.3, seed: int = 0) -> tuple[QuestionSets, QuestionSets]:
        """Deterministic train/test split that keeps paraphrases out of the test side.

        - Reasoning: by group. Whole template groups go to the test side, chosen in a seeded
          random order until the test side is as close as possible to ``test_fraction`` of the
          reasoning questions. A test problem is then never a renumbered copy of a training
          problem, so held-out accuracy measures a direction that generalises across problem
          types, not one that recognises a template.
        - Memory: stratified within each group. Memory groups are fact types (capitals, symbols,
          ...); every fact is a different question already, and holding out whole fact types
          would leave the built-in set (7 very unequal groups) with a lopsided test side. Each
          group sends its share of facts to the test side (largest-remainder rounding, seeded),
          so both sides see every fact type but never the same fact.

        Question order inside each side follows the original order. Without a group column
        (user files, :meth:`from_texts`) each question is its own group, and both rules reduce
        to a seeded item-level split.

        Args:
            test_fraction: share of each class that goes to the test side, in (0, 1).
            seed: the same seed and the same questions give the same split on every machine.

        Returns:
            ``(train, test)``, named ``"<name>/train"`` and ``"<name>/test"``.

        Raises:
            DataError: ``test_fraction`` outside (0, 1), reasoning questions in a single group,
                or a class with fewer than 2 questions (one side would be empty).
        """
        if not (isinstance(test_fraction, (int, float)) and 0.0 < test_fraction < 1.0):
            raise DataError(
                f"test_fraction={test_fraction!r}; expected a number strictly between 0 and 1, "
                "e.g. 0.3"
            )
        for label, questions in ((REASONING, self.reasoning), (MEMORY, self.memory)):
            if len(questions) < 2:
                raise DataError(
                    f"{self.name!r} has {len(questions)} {label} question(s); a split needs at "
                    "least 2 per class so that train and test both have one"
                )
        r_test = _group_split(self.reasoning, test_fraction, random.Random(f"{seed}:reasoning"))
        if r_test is None:
            group = self.reasoning[0].group
            raise DataError(
                f"all {len(self.reasoning)} reasoning questions of {self.name!r} are in one group "
                f"({group!r}); the split holds out whole groups, so it needs at least 2. Give the "
                "file a 'group' column with several values (e.g. a template id) or drop it"
            )
        m_test = _stratified_split(self.memory, test_fraction, random.Random(f"{seed}:memory"))
        train = QuestionSets(
            tuple(q for i, q in enumerate(self.reasoning) if i not in r_test),
            tuple(q for i, q in enumerate(self.memory) if i not in m_test),
            f"{self.name}/train",
        )
        test = QuestionSets(
            tuple(q for i, q in enumerate(self.reasoning) if i in r_test),
            tuple(q for i, q in enumerate(self.memory) if i in m_test),
            f"{self.name}/test",
        )
        return train, test

    def subset(self, n_per_class: int, seed: int = 0) -> QuestionSets:
        """At most ``n_per_class`` questions of each class, spread over the groups (quick runs).

        Groups are visited round-robin in a seeded order, each contributing its questions in a
        seeded order, so a small subset still covers many templates and fact types. The chosen
        questions keep their original order. A class smaller than ``n_per_class`` is kept whole.
        """
        if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 1:
            raise DataError(f"n_per_class={n_per_class!r}; expected a positive integer, e.g. 32")
        picked = []
        for label, questions in ((REASONING, self.reasoning), (MEMORY, self.memory)):
            rng = random.Random(f"{seed}:subset:{label}")
            order = _round_robin(questions, rng)[:n_per_class]
            keep = set(order)
            picked.append(tuple(q for i, q in enumerate(questions) if i in keep))
        return QuestionSets(picked[0], picked[1], f"{self.name}/subset{n_per_class}")

    def length_matched(
        self,
        *,
        length: Callable[[str], int] = len,
        bin_width: int = 10,
        seed: int = 0,
    ) -> QuestionSets:
        """A subset in which both classes have the same number of questions per length bin.

        Reasoning questions are longer than recall questions on average, so a direction (or any
        probe) could separate the classes by length alone. Comparing results on this subset with
        results on the full set shows how much of the separation survives once length is held
        fixed.

        Args:
            length: length of a question text; ``len`` (characters) by default, or e.g.
                ``lambda t: len(tokenizer(t).input_ids)`` for tokens.
            bin_width: width of the length bins, in the unit of ``length``.
            seed: which questions are kept where a bin has more of one class (seeded).

        Raises:
            DataError: ``bin_width`` < 1, or no bin holds questions of both classes.
        """
        if isinstance(bin_width, bool) or not isinstance(bin_width, int) or bin_width < 1:
            raise DataError(f"bin_width={bin_width!r}; expected a positive integer, e.g. 10")
        rng = random.Random(f"{seed}:length_matched")
        bins: dict[int, tuple[list[int], list[int]]] = {}
        for cls, questions in enumerate((self.reasoning, self.memory)):
            for i, q in enumerate(questions):
                bins.setdefault(length(q.text) // bin_width, ([], []))[cls].append(i)
        keep_r: set[int] = set()
        keep_m: set[int] = set()
        for b in sorted(bins):
            r_idx, m_idx = bins[b]
            n = min(len(r_idx), len(m_idx))
            keep_r.update(rng.sample(r_idx, n))
            keep_m.update(rng.sample(m_idx, n))
        if not keep_r:
            raise DataError(
                f"no length bin of width {bin_width} holds both reasoning and memory questions "
                f"in {self.name!r}; the classes do not overlap in length, so a length-matched "
                "subset is empty (try a larger bin_width or add questions of similar length)"
            )
        return QuestionSets(
            tuple(q for i, q in enumerate(self.reasoning) if i in keep_r),
            tuple(q for i, q in enumerate(self.memory) if i in keep_m),
            f"{self.name}/length-matched",
        )


def answer_type(answer: str) -> str:
    """``"number"`` when ``answer`` is a plain number (``42``, ``-3``, ``2.5``, ``+33``), else ``"text"``.

    The two answer types of a matched set (:func:`check_matched`): a model answering "42" and one
    answering "Lima" produce different kinds of tokens, so a set whose classes differ in answer
    type lets a direction read the answer format instead of the kind of question.
    """
    return NUMBER if _NUMBER.fullmatch(answer.strip()) else TEXT


#: Largest difference, in share of a class, between the classes' answer-type mixes of a matched set.
MATCHED_TOLERANCE = 0.05


def check_matched(sets: QuestionSets, where: str = "") -> None:
    """Refuse a set declared matched whose classes differ in answer type.

    Every question needs an answer; :func:`answer_type` sorts it into ``"number"`` or ``"text"``;
    each type must make up the same share of both classes within :data:`MATCHED_TOLERANCE`.

    Raises:
        DataError: a question without an answer, or classes with different answer-type mixes.
    """
    where = where or f"question set {sets.name!r}"
    shares = []
    for label, questions in ((REASONING, sets.reasoning), (MEMORY, sets.memory)):
        missing = next((q for q in questions if not q.answer.strip()), None)
        if missing is not None:
            raise DataError(
                f"{where} is loaded as matched, but {label} question {missing.id!r} has no "
                "answer; a matched set compares answer types, so give every question an answer"
            )
        shares.append(sum(answer_type(q.answer) == NUMBER for q in questions) / len(questions))
    if abs(shares[0] - shares[1]) > MATCHED_TOLERANCE:
        mix = ", ".join(
            f"{label} {share:.0%} number / {1 - share:.0%} text"
            for label, share in zip((REASONING, MEMORY), shares, strict=True)
        )
        raise DataError(
            f"{where} is loaded as matched, but its classes differ in answer type: {mix} "
            "('number' = a plain number such as 42 or +33, 'text' = anything else); give both "
            f"classes the same mix (within {MATCHED_TOLERANCE:.0%}) or load it with matched=False"
        )


def _groups(questions: Sequence[Question]) -> dict[str, list[int]]:
    """Indices per group, groups in sorted order (independent of the input order)."""
    out: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        out.setdefault(q.group, []).append(i)
    return {g: out[g] for g in sorted(out)}


def _group_split(
    questions: Sequence[Question], fraction: float, rng: random.Random
) -> set[int] | None:
    """Indices of the test side made of whole groups; None if there is only one group."""
    groups = _groups(questions)
    if len(groups) < 2:
        return None
    names = list(groups)
    rng.shuffle(names)
    target = fraction * len(questions)
    chosen: list[str] = []
    total = 0
    for g in names:
        size = len(groups[g])
        if abs(total + size - target) < abs(total - target):
            chosen.append(g)
            total += size
    if not chosen:  # every group is larger than twice the target: take the first one
        chosen = names[:1]
    if len(chosen) == len(names):  # keep at least one group for training
        chosen.pop()
    return {i for g in chosen for i in groups[g]}


def _stratified_split(
    questions: Sequence[Question], fraction: float, rng: random.Random
) -> set[int]:
    """Indices of a test side taking ``fraction`` of every group (largest-remainder rounding)."""
    groups = _groups(questions)
    n_test = min(max(round(fraction * len(questions)), 1), len(questions) - 1)
    names = list(groups)
    rng.shuffle(names)  # breaks ties between equal remainders
    quota = {g: fraction * len(groups[g]) for g in names}
    take = {g: math.floor(quota[g]) for g in names}
    by_remainder = sorted(names, key=lambda g: quota[g] - take[g], reverse=True)  # stable sort
    for g in by_remainder[: max(n_test - sum(take.values()), 0)]:
        take[g] += 1
    test: set[int] = set()
    for g in names:
        idx = list(groups[g])
        rng.shuffle(idx)
        test.update(idx[: take[g]])
    return test


def _round_robin(questions: Sequence[Question], rng: random.Random) -> list[int]:
    """All indices, taking one question from each group in turn (seeded orders)."""
    groups = _groups(questions)
    names = list(groups)
    rng.shuffle(names)
    queues = []
    for g in names:
        idx = list(groups[g])
        rng.shuffle(idx)
        queues.append(idx)
    order: list[int] = []
    depth = 0
    while len(order) < len(questions):
        order += [q[depth] for q in queues if depth < len(q)]
        depth += 1
    return order


# ------------------------------------------------------------------------------------------------
# Reading files
# ------------------------------------------------------------------------------------------------


def builtin_text(filename: str) -> str:
    """The text of ``lirefs/builtin/<filename>`` (DataError when the installation lacks it)."""
    resource = importlib.resources.files("lirefs").joinpath("builtin").joinpath(filename)
    try:
        return resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(
            f"built-in data file lirefs/builtin/{filename} is missing from this installation; "
            "reinstall lirefs (or run scripts/make_builtin_data.py in a source checkout)"
        ) from exc


def _jsonl_records(text: str, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for every non-blank line of a JSONL text."""
    for line in jsonl_lines(text):
        if line.record is None:
            hint = (
                "; each line must be one JSON object"
                if line.problem and line.problem.startswith("not valid JSON")
                else ' like {"question": "...", "label": "reasoning"}'
            )
            raise DataError(f"{where}, line {line.line_no}: {line.problem}{hint}")
        yield line.line_no, line.record


def _csv_records(text: str, where: str, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, row dict) for every data row of a CSV text with a header line."""
    for line_no, header, cells in delimited_rows(text, delimiter, where, strict=True):
        if len(cells) > len(header):
            raise DataError(
                f"{where}, line {line_no}: {len(cells)} fields, but the header (line 1) has "
                f"{len(header)}; quote values that contain {delimiter!r}"
            )
        if len(cells) < len(header):
            raise DataError(
                f"{where}, line {line_no}: {len(cells)} field(s), but the header (line 1) has "
                f"{len(header)} (no value for {header[len(cells)]!r})"
            )
        yield line_no, dict(zip(header, cells, strict=True))


@dataclass(frozen=True)
class _RowFormat:
    """How a file's rows read as questions: the text, label and answer columns, the label map
    (lower-cased value -> class), and what fills a row's missing ``source`` / ``license``."""

    text_column: str
    label_column: str
    answer_column: str
    labels: dict[str, str]
    default_source: str = ""
    default_license: str = ""


def _question_from_record(
    record: dict[str, Any], line_no: int, where: str, form: _RowFormat, *, default_id: str
) -> Question:
    """One validated Question from a file row; DataError names the file, line and problem."""
    text_column, label_column, labels = form.text_column, form.label_column, form.labels
    for column in (text_column, label_column):
        if column not in record:
            raise DataError(
                f"{where}, line {line_no}: no {column!r} field (found {sorted(record)}); "
                f"add it, or pass {'text_column' if column == text_column else 'label_column'}="
                "<your column name> to lirefs.data.load"
            )
    text = record[text_column]
    if not isinstance(text, str) or not text.strip():
        raise DataError(
            f"{where}, line {line_no}: empty or non-text {text_column!r} value {text!r}; "
            "every question needs non-empty text"
        )
    raw_label = record[label_column]
    label = labels.get(str(raw_label).strip().lower())
    if label is None:
        accepted = sorted(labels)
        raise DataError(
            f"{where}, line {line_no}: unknown label {raw_label!r} in {label_column!r}; expected "
            f"one of {accepted} (case-insensitive), or pass reasoning_values=/memory_values="
        )
    answer = record.get(form.answer_column)
    aliases = record.get("aliases") or ()
    if isinstance(aliases, str):  # CSV: "a|b|c"
        aliases = tuple(a.strip() for a in aliases.split("|") if a.strip())
    if not isinstance(aliases, (list, tuple)) or not all(isinstance(a, str) for a in aliases):
        raise DataError(
            f"{where}, line {line_no}: 'aliases' is {aliases!r}; expected a list of strings "
            "(JSONL) or a '|'-separated string (CSV)"
        )

    def text_field(key: str, default: str) -> str:
        value = record.get(key)
        return default if value is None or str(value).strip() == "" else str(value)

    qid = text_field("id", default_id)
    return Question(
        text=text,
        answer="" if answer is None else str(answer),
        label=label,
        id=qid,
        group=text_field("group", qid),
        source=text_field("source", form.default_source),
        license=text_field("license", form.default_license),
        aliases=tuple(aliases),
    )


#: The field a scored row's class is written to before it is read like any labelled row.
_SCORE_LABEL = "\x00lirefs score label"


def _scored(
    records: Iterable[tuple[int, dict[str, Any]]], where: str, column: str, threshold: float
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows labelled by ``score > threshold`` (reasoning) else memory, as the paper splits its
    ``memory_reason_score``; a missing, non-numeric or NaN score is a DataError."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise DataError(f"threshold must be a number, got {threshold!r}")
    for line_no, record in records:
        if column not in record:
            raise DataError(
                f"{where}, line {line_no}: no {column!r} field (found {sorted(record)}); add it, "
                "or pass score_column=<your column name>"
            )
        raw = record[column]
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(raw, bool) or value != value:
            raise DataError(
                f"{where}, line {line_no}: {column!r} is {raw!r}; expected a number (the row's "
                "score, compared with threshold)"
            )
        yield line_no, {**record, _SCORE_LABEL: REASONING if value > threshold else MEMORY}


def _label_map(reasoning_values: Iterable[str], memory_values: Iterable[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in reasoning_values:
        labels[str(value).strip().lower()] = REASONING
    for value in memory_values:
        key = str(value).strip().lower()
        if labels.get(key) == REASONING:
            raise DataError(
                f"label value {value!r} is in both reasoning_values and memory_values; "
                "each value must map to one class"
            )
        labels[key] = MEMORY
    return labels


def _sets_from_questions(questions: list[Question], where: str, name: str) -> QuestionSets:
    """Check uniqueness and both classes, then group by label (order kept)."""
    if not questions:
        raise DataError(
            f"{where} holds no questions; both classes are needed (at least one 'reasoning' "
            "and one 'memory' row)"
        )
    seen_ids: set[str] = set()
    seen_text: dict[str, Question] = {}
    for q in questions:
        if q.id in seen_ids:
            raise DataError(f"{where}: id {q.id!r} appears twice; ids must be unique")
        seen_ids.add(q.id)
        other = seen_text.get(q.text)
        if other is not None and other.label != q.label:
            raise DataError(
                f"{where}: the question {q.text[:60]!r} appears as {other.label!r} ({other.id}) "
                f"and as {q.label!r} ({q.id}); a question can have only one label"
            )
        seen_text.setdefault(q.text, q)
    reasoning = [q for q in questions if q.label == REASONING]
    memory = [q for q in questions if q.label == MEMORY]
    if not reasoning or not memory:
        raise DataError(
            f"{where} has {len(reasoning)} reasoning and {len(memory)} memory questions; both "
            "classes are needed to compute a direction, add questions of the missing class"
        )
    return QuestionSets(tuple(reasoning), tuple(memory), name)


def _load_file(
    path: Path,
    *,
    text_column: str,
    label_column: str,
    answer_column: str,
    labels: dict[str, str],
    score: tuple[str, float] | None = None,
) -> QuestionSets:
    where = f"data file {str(path)!r}"
    suffix = path.suffix.lower()
    if suffix not in _JSONL_SUFFIXES and suffix not in _CSV_DELIMITERS:
        raise DataError(
            f"{where} has suffix {suffix!r}; expected .jsonl (one JSON object per line), .csv or "
            ".tsv (header line with the column names)"
        )
    text = read_text(path, where)
    if suffix in _JSONL_SUFFIXES:
        records = _jsonl_records(text, where)
    else:
        records = _csv_records(text, where, _CSV_DELIMITERS[suffix])
        first_row = csv.reader(io.StringIO(text, newline=""), delimiter=_CSV_DELIMITERS[suffix])
        header = next(first_row, [])
        needed = (
            (text_column, "text_column"),
            ((label_column, "label_column") if score is None else (score[0], "score_column")),
        )
        for column, arg in needed:
            if header and column not in header:
                raise DataError(
                    f"{where}, line 1: the header has no {column!r} column (found {header}); "
                    f"rename the column or pass {arg}=<your column name>"
                )
    if score is not None:
        records = _scored(records, where, *score)
        label_column, labels = _SCORE_LABEL, _label_map((REASONING,), (MEMORY,))
    form = _RowFormat(
        text_column,
        label_column,
        answer_column,
        labels,
        default_source=path.name,
        default_license="unknown (user file)",
    )
    questions = [
        _question_from_record(record, line_no, where, form, default_id=f"{path.stem}-{line_no}")
        for line_no, record in records
    ]
    return _sets_from_questions(questions, where, path.stem)


def _load_builtin() -> QuestionSets:
    questions = []
    for filename in ("reasoning.jsonl", "memory.jsonl"):
        questions += builtin_questions(filename)
    return _sets_from_questions(questions, "built-in data", "builtin")


def builtin_questions(filename: str) -> list[Question]:
    """The questions of the frozen JSONL ``lirefs/builtin/<filename>`` (item columns)."""
    where = f"built-in file lirefs/builtin/{filename}"
    form = _RowFormat("question", "label", "answer", _label_map((REASONING,), (MEMORY,)))
    return [
        _question_from_record(record, line_no, where, form, default_id="")
        for line_no, record in _jsonl_records(builtin_text(filename), where)
    ]


def _load_builtin_matched() -> QuestionSets:
    sets = _sets_from_questions(
        builtin_questions("matched.jsonl"), "built-in data", "builtin-matched"
    )
    check_matched(sets, "built-in file lirefs/builtin/matched.jsonl")
    return sets


def _load_reasoning_gym(seed: int = 0) -> QuestionSets:
    """GSM-Symbolic problems (reasoning) paired with the built-in memory questions.

    As many problems as there are built-in memory questions are generated with ``seed``; the
    group of each is its GSM-Symbolic template (``gsm_symbolic-<n>``), so :meth:`QuestionSets.split`
    holds out whole templates. The instruction GSM-Symbolic appends to every question is removed
    (it would be a format cue present in one class only), and repeated question texts are kept once.
    """
    try:
        import reasoning_gym  # type: ignore[import-not-found]
    except ImportError as exc:
        raise DataError(
            "source 'reasoning-gym' needs the optional package reasoning_gym, which is not "
            f"installed; run: pip install {REASONING_GYM_PIN} (or use load('builtin'))"
        ) from exc
    memory = builtin_questions("memory.jsonl")
    dataset = reasoning_gym.create_dataset("gsm_symbolic", size=len(memory), seed=seed)
    templates = getattr(dataset, "task_indices", None)
    if templates is None or len(templates) != len(memory):
        raise DataError(
            "the installed reasoning_gym's gsm_symbolic dataset has no per-item template index "
            f"(task_indices), which the group split needs; run: pip install {REASONING_GYM_PIN}"
        )
    reasoning: list[Question] = []
    seen: set[str] = set()
    for i in range(len(memory)):
        entry = dataset[i]
        text = str(entry["question"])
        if text.endswith(_GSM_SYMBOLIC_SUFFIX):
            text = text[: -len(_GSM_SYMBOLIC_SUFFIX)]
        if text in seen:
            continue
        seen.add(text)
        template = int(templates[i])
        reasoning.append(
            Question(
                text=text,
                answer=str(entry["answer"]),
                label=REASONING,
                id=f"gsm_symbolic-{seed}-{i:04d}",
                group=f"gsm_symbolic-{template}",
                source="reasoning-gym gsm_symbolic",
                license="Apache-2.0 (reasoning-gym)",
            )
        )
    return QuestionSets(tuple(reasoning), tuple(memory), "reasoning-gym")


def load(
    source: str | Path = "builtin",
    *,
    text_column: str = "question",
    label_column: str = "label",
    answer_column: str = "answer",
    reasoning_values: Sequence[str] = ("reasoning", "1", "true"),
    memory_values: Sequence[str] = ("memory", "0", "false"),
    matched: bool = False,
    score_column: str | None = None,
    threshold: float = 0.5,
) -> QuestionSets:
    """Load labelled questions for building a direction.

    Args:
        source: ``"builtin"`` (the frozen built-in direction sets), ``"builtin-matched"`` (both
            classes in the same surface form and answer type; see docs/data.md),
            ``"reasoning-gym"`` (GSM-Symbolic problems from the optional ``reasoning-gym``
            package plus the built-in memory set), or a path to a ``.jsonl`` / ``.csv`` /
            ``.tsv`` file.
        text_column: field or column holding the question (files only).
        label_column: field or column holding the class (files only).
        answer_column: optional field or column holding the answer (files only).
        reasoning_values: label values meaning "reasoning", compared case-insensitively after
            stripping (JSON ``1``/``true`` match ``"1"``/``"true"``).
        memory_values: label values meaning "memory", likewise.
        matched: declare the set format-matched: every question must have an answer and each
            answer type (:func:`answer_type`: number or text) must make up the same share of both
            classes (:func:`check_matched`). ``"builtin-matched"`` is always checked.
        score_column: label by a numeric score instead of ``label_column`` (files only): a row
            whose score is ``> threshold`` is reasoning, else memory. The paper's own labelled
            MMLU-Pro files carry ``memory_reason_score`` (higher = more reasoning), so
            ``load(path, score_column="memory_reason_score", threshold=0.5)`` reproduces its
            split.
        threshold: the score above which a row is reasoning.

    Files may also carry ``id``, ``group``, ``source``, ``license`` and ``aliases`` (JSON list, or
    ``|``-separated in CSV). Without ``group`` each question is its own group; without ``id`` the
    id is ``<file stem>-<line number>``. Blank lines are skipped.

    Raises:
        DataError: unknown source, unreadable or malformed file (the message names the file, the
            1-based line and the problem: bad JSON, missing column, unknown label, empty text),
            an empty or one-class file, a duplicate id, a question given both labels, or (with
            ``matched=True``) classes that differ in answer type.
    """
    if not isinstance(source, (str, os.PathLike)) or not str(source).strip():
        raise DataError(
            f"source must be 'builtin', 'builtin-matched', 'reasoning-gym' or a path to a .jsonl, "
            f".csv or .tsv file, got {source!r}"
        )
    if score_column is not None and str(source) in ("builtin", "builtin-matched", "reasoning-gym"):
        raise DataError(f"score_column applies to files only; {str(source)!r} is labelled already")
    if str(source) == "builtin-matched":
        return _load_builtin_matched()
    if str(source) == "builtin":
        sets = _load_builtin()
    elif str(source) == "reasoning-gym":
        sets = _load_reasoning_gym()
    else:
        sets = _load_path(
            source,
            text_column=text_column,
            label_column=label_column,
            answer_column=answer_column,
            labels=_label_map(reasoning_values, memory_values),
            score=None if score_column is None else (score_column, threshold),
        )
    if matched:
        where = f"data file {str(source)!r}" if Path(source).is_file() else f"source {source!r}"
        check_matched(sets, where)
    return sets


def _load_path(
    source: str | Path,
    *,
    text_column: str,
    label_column: str,
    answer_column: str,
    labels: dict[str, str],
    score: tuple[str, float] | None = None,
) -> QuestionSets:
    """The questions of a user file (``load`` for anything that is not a built-in name)."""
    path = Path(source)
    if not path.is_file():
        raise DataError(
            f"data source {str(source)!r} is neither 'builtin', 'builtin-matched', "
            "'reasoning-gym' nor an existing file; give one of those names or the path to a "
            ".jsonl or .csv file"
        )
    return _load_file(
        path,
        text_column=text_column,
        label_column=label_column,
        answer_column=answer_column,
        labels=labels,
        score=score,
    )
