"""Prompting baselines beside steering: unsteered rows whose prompts carry an extra text.

``evaluate(..., prompt_baselines=("Let's think step by step.",))`` adds, for each text, one
unsteered run (alpha 0, no edit) over the same items whose prompts end the item's own question
with `` <text>`` (before ``"\\nA:"`` in the plain format, at the end of the user turn in chat
format; the exemplars are unchanged). Each is summarised like a steered row against alpha 0:
accuracy with its exact interval, flexible accuracy, no-answer rate, the continuous outcomes, the
degenerate share, per-group results, and paired tests against the alpha-0 run on the same items
(accuracy and degeneration: McNemar; gold / answer log-prob: paired interval and sign-flip p),
each in the Holm family of its outcome (``summary.adjust_holm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .groups import GroupResult
from .records import baseline_label
from .stats import PairedTest

__all__ = ["BaselineResult"]

#: The paired tests of a baseline against alpha 0, by outcome (as ``EvalResult.vs_controls``).
TEST_KEYS = ("accuracy", "gold_logprob", "answer_logprob", "degenerate")


@dataclass
class BaselineResult:
    """One prompt baseline's summary (see the module docstring).

    Attributes:
        text: the text added to each item's question; ``label`` is ``"prompt: <text>"``.
        row: the summary numbers, with the keys of ``EvalResult.rows()`` (``alpha`` 0: the run is
            unsteered): accuracy, ci, flexible accuracy and ci, no-answer rate, counts, gold and
            answer log-prob means with their intervals, answer log-prob counts, degenerate share.
        tests: ``{outcome: PairedTest}`` of this baseline minus alpha 0 on the same items
            (``"accuracy"``, ``"gold_logprob"``, ``"answer_logprob"``, ``"degenerate"``; those
            the run has), with Holm p-values; empty when 0 is not among the alphas.
        by_group: ``{group: GroupResult}`` (its ``paired``: against alpha 0 on the group).
        records: the baseline's own records (each with ``baseline`` = ``text``).
    """

    text: str
    row: dict[str, Any]
    tests: dict[str, PairedTest] = field(default_factory=dict)
    by_group: dict[str, GroupResult] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        """``"prompt: <text>"``: how tables and records name the row."""
        return baseline_label(self.text)

    @property
    def accuracy(self) -> float:
        """Strict accuracy of the baseline's outputs."""
        return float(self.row["accuracy"])

    @property
    def paired(self) -> PairedTest | None:
        """The accuracy test against alpha 0 (McNemar), ``None`` without alpha 0."""
        return self.tests.get("accuracy")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``from_dict`` reads it back; records are kept apart)."""
        return {
            "text": self.text,
            "label": self.label,
            **self.row,
            "tests": {k: t.to_dict() for k, t in self.tests.items()},
            "by_group": {name: g.to_dict() for name, g in self.by_group.items()},
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any], records: list[dict[str, Any]] | None = None) -> Any:
        """A ``BaselineResult`` from ``to_dict``'s form and its records."""
        row = {k: v for k, v in obj.items() if k not in ("text", "label", "tests", "by_group")}
        return cls(
            text=str(obj["text"]),
            row=row,
            tests={k: PairedTest.from_dict(v) for k, v in (obj.get("tests") or {}).items()},
            by_group={n: GroupResult.from_dict(g) for n, g in (obj.get("by_group") or {}).items()},
            records=list(records or []),
        )
