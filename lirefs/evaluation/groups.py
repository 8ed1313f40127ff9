"""Per-group results of an evaluation (MMLU-Pro category, C-Eval subject, built-in template)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .stats import PairedTest

__all__ = ["GroupResult", "pair_of"]


def pair_of(values: Any) -> tuple[float, float]:
    """A JSON ``[low, high]`` as a float pair."""
    low, high = values
    return float(low), float(high)


@dataclass(frozen=True)
class GroupResult:
    """Strict accuracy on one group's items (MMLU-Pro category, C-Eval subject, template) at one
    alpha.

    Attributes:
        accuracy: share correct.
        ci: 95% exact (Clopper-Pearson) interval.
        n: items of the group; ``n_correct``: of them correct.
        paired: the test against alpha 0 on the same items (exact McNemar; ``None`` at alpha 0
            or without alpha 0); its ``p_holm`` is adjusted across every group and alpha.
    """

    accuracy: float
    ci: tuple[float, float]
    n: int
    n_correct: int
    paired: PairedTest | None = None

    def __getitem__(self, key: str) -> Any:
        """Dict-style access to the fields (``g["accuracy"]``, ``g["ci"]``, ``g["n"]``...)."""
        if key not in ("accuracy", "ci", "n", "n_correct", "paired"):
            raise KeyError(key)
        return getattr(self, key)

    def with_paired(self, paired: PairedTest) -> GroupResult:
        """This result with another paired test (its Holm-adjusted copy)."""
        return replace(self, paired=paired)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "accuracy": self.accuracy,
            "ci": list(self.ci),
            "n": self.n,
            "n_correct": self.n_correct,
            "paired": None if self.paired is None else self.paired.to_dict(),
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> GroupResult:
        """The inverse of :meth:`to_dict`."""
        paired = obj.get("paired")
        return cls(
            accuracy=float(obj["accuracy"]),
            ci=pair_of(obj["ci"]),
            n=int(obj["n"]),
            n_correct=int(obj["n_correct"]),
            paired=None if paired is None else PairedTest.from_dict(paired),
        )
