"""Held-out states of a question set and the layer report on them.

``ActivationSplit`` keeps the last-token states of a question set's train half (for the direction)
and test half (for the layer choice), with the test prompts' token lengths (for the length
baseline); ``split_report`` is ``lirefs.layer_report`` of a direction on a split's test half. The
orchestration that makes splits and directions (``collect_split``, ``find_direction``,
``split_transfer``) lives one floor up in ``lirefs.pipeline``; those names still resolve here for
existing imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checks import renamed_keywords
from ..direction import Direction
from ..errors import ActivationError
from ..models import model_info
from ..reading import warn_read_mismatch
from ..store import check_metadata, load_tensors, save_tensors
from .report import LayerReport, layer_report

__all__ = ["MOVED_TO_PIPELINE", "ActivationSplit", "split_report"]

_TENSORS = (
    "train_reasoning",
    "train_memory",
    "test_reasoning",
    "test_memory",
    "test_reasoning_lengths",
    "test_memory_lengths",
)


@dataclass
class ActivationSplit:
    """Last-token states of a question set, split into train (direction) and test (layer choice).

    Attributes:
        train_reasoning: ``[n_train_r, L + 1, d_model]`` float32.
        train_memory: ``[n_train_m, L + 1, d_model]`` float32.
        test_reasoning: ``[n_test_r, L + 1, d_model]`` float32.
        test_memory: ``[n_test_m, L + 1, d_model]`` float32.
        test_reasoning_lengths: ``[n_test_r]`` int64 prompt lengths in tokens.
        test_memory_lengths: ``[n_test_m]`` int64 prompt lengths in tokens.
        metadata: model, data (set name, hash, split, counts), settings, version.
    """

    train_reasoning: torch.Tensor
    train_memory: torch.Tensor
    test_reasoning: torch.Tensor
    test_memory: torch.Tensor
    test_reasoning_lengths: torch.Tensor
    test_memory_lengths: torch.Tensor
    metadata: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """One safetensors file (tensors + JSON metadata header), written atomically."""
        return save_tensors(path, {name: getattr(self, name) for name in _TENSORS}, self.metadata)

    @classmethod
    def load(cls, path: str | Path, *, model: Any = None) -> ActivationSplit:
        """Read a file from ``save``; with ``model``, refuse states of another model."""
        path = Path(path)
        tensors, meta = load_tensors(
            path,
            required=_TENSORS,
            error=ActivationError,
            what="activation split",
            hint="; make it with `lirefs collect`",
        )
        check_metadata(
            meta,
            what=str(path),
            kind="activation-split",
            model=model_info(model).to_dict() if model is not None else None,
        )
        return cls(**{name: tensors[name] for name in _TENSORS}, metadata=meta)


@renamed_keywords(liref="direction")
def split_report(
    direction: Direction,
    split: ActivationSplit,
    *,
    n_permutations: int = 200,
    seed: int = 0,
    progress: bool | None = None,
) -> LayerReport:
    """``lirefs.layer_report`` of ``direction`` on the held-out half of ``split``, with its baselines.

    The train half feeds the in-sample AUROC column; the test prompts' token lengths feed the
    prompt-length baselines. Warns (``ReadMismatchWarning``) when the direction's states were read
    at another position or from prompts in another format than the split's.
    """
    made = split.metadata.get("settings") or {}
    warn_read_mismatch(
        direction.metadata.get("settings"),
        prompt_format=made.get("prompt_format"),
        read=made.get("read", "last"),
    )
    return layer_report(
        direction,
        split.test_reasoning,
        split.test_memory,
        train_reasoning_acts=split.train_reasoning,
        train_memory_acts=split.train_memory,
        test_reasoning_lengths=split.test_reasoning_lengths.tolist(),
        test_memory_lengths=split.test_memory_lengths.tolist(),
        n_permutations=n_permutations,
        seed=seed,
        progress=progress,
    )


#: Names that moved to ``lirefs.pipeline``; they resolve here so existing imports keep working.
MOVED_TO_PIPELINE = ("collect_split", "find_direction", "split_transfer")


def __getattr__(name: str) -> Any:
    """``collect_split``, ``find_direction`` and ``split_transfer`` from ``lirefs.pipeline``."""
    if name in MOVED_TO_PIPELINE:
        from .. import pipeline  # the one import upward: these names' old home

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
