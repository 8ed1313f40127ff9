"""The held-out split pipeline: split -> collect -> direction -> held-out layer choice.

``collect_split`` reads the last-token states of a question set's train and test halves and keeps
them, with the test prompts' token lengths (for the length baseline), in an ``ActivationSplit``;
``find_direction`` builds the ``Direction`` from the train half only and chooses its layer on the
test half only (``lirefs.layer_report``), recording the choice in the direction's metadata so that
steering and evaluation use a layer never chosen on a benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..batching import token_lengths, tokenize
from ..checks import renamed_keywords
from ..collect import collect_activations
from ..data import QuestionSets
from ..direction import Direction
from ..errors import ActivationError, DataError
from ..models import model_info
from ..reading import CHAT_FORMAT, PLAIN_FORMAT, common_suffix, parse_read, warn_read_mismatch
from ..store import check_metadata, load_tensors, make_metadata, save_tensors
from .report import LayerReport, layer_report
from .transfer import TransferReport, transfer_report

__all__ = ["ActivationSplit", "collect_split", "find_direction", "split_report", "split_transfer"]

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


def collect_split(
    model: Any,
    sets: QuestionSets,
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
    batch_size: int | None = None,
    remote: bool | str | None = None,
    cache_dir: str | Path | None = None,
    chat_template: bool = False,
    progress: bool | None = None,
    read: str = "last",
) -> ActivationSplit:
    """Split ``sets`` (deterministically) and collect every half's last-token states.

    Args:
        model: from ``lirefs.load_model``.
        sets: reasoning and memory questions (``lirefs.data.load(...)``).
        test_fraction: share of each class held out for layer choice (see ``QuestionSets.split``).
        seed: split seed.
        batch_size, remote, progress: as in ``collect_activations``.
        cache_dir: resumable chunk caches go to ``cache_dir/<half>-<class>/``.
        chat_template: wrap questions with the tokenizer's chat template instead of ``Q: ...\\nA: ``.
        read: where each prompt's state is read (``collect_activations``). With
            ``"question_end"`` the shared suffix is found on all four halves together, so both
            classes and both halves are read at the same place.
    """
    spec = parse_read(read)
    train, test = sets.split(test_fraction=test_fraction, seed=seed)
    tok = model.tokenizer if chat_template else None
    parts: dict[str, torch.Tensor] = {}
    lengths: dict[str, torch.Tensor] = {}
    halves = [
        (half_name, cls_name, prompts)
        for half_name, half in (("train", train), ("test", test))
        for cls_name, prompts in (
            ("reasoning", half.reasoning_prompts(chat_template=chat_template, tokenizer=tok)),
            ("memory", half.memory_prompts(chat_template=chat_template, tokenizer=tok)),
        )
    ]
    suffix: list[int] | None = None
    if spec.kind == "question_end":
        for _, _, prompts in halves:
            suffix = common_suffix(tokenize(model, prompts), suffix) if prompts else suffix
    for half_name, cls_name, prompts in halves:
        if not prompts:
            raise DataError(f"the {half_name} half has no {cls_name} questions; use more data")
        sub = Path(cache_dir) / f"{half_name}-{cls_name}" if cache_dir is not None else None
        parts[f"{half_name}_{cls_name}"] = collect_activations(
            model,
            prompts,
            batch_size=batch_size,
            remote=remote,
            cache_dir=sub,
            progress=progress,
            read=str(spec),
            question_suffix=suffix,
            label=f"{half_name} {cls_name}",
        )
        if half_name == "test":
            lengths[cls_name] = torch.tensor(token_lengths(model, prompts), dtype=torch.long)
    meta = make_metadata(
        "activation-split",
        model=model_info(model).to_dict(),
        data={
            "name": sets.name,
            "hash": sets.hash(),
            "train_hash": train.hash(),
            "test_hash": test.hash(),
            "counts": {
                "train_reasoning": len(train.reasoning),
                "train_memory": len(train.memory),
                "test_reasoning": len(test.reasoning),
                "test_memory": len(test.memory),
            },
        },
        settings={
            "test_fraction": test_fraction,
            "seed": seed,
            "prompt_format": CHAT_FORMAT if chat_template else PLAIN_FORMAT,
            "read": str(spec),
            "read_suffix": suffix,
            "batch_size": batch_size,
        },
    )
    return ActivationSplit(
        parts["train_reasoning"],
        parts["train_memory"],
        parts["test_reasoning"],
        parts["test_memory"],
        lengths["reasoning"],
        lengths["memory"],
        meta,
    )


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


def find_direction(
    split: ActivationSplit,
    *,
    n_permutations: int = 200,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[Direction, LayerReport]:
    """The direction from the train half, its layer chosen on the test half.

    Returns:
        ``(direction, report)``: ``direction.metadata["settings"]["best_layer"]`` holds the layer
        chosen by held-out AUROC (``report.best_layer``), with how it was chosen.
    """
    data = dict(split.metadata.get("data") or {})
    direction = Direction.from_activations(
        split.train_reasoning,
        split.train_memory,
        model=split.metadata.get("model"),
        data={
            "name": data.get("name"),
            "hash": data.get("train_hash"),
            "set_hash": data.get("hash"),
        },
        settings={**(split.metadata.get("settings") or {}), "source": "train half"},
    )
    report = split_report(
        direction, split, n_permutations=n_permutations, seed=seed, progress=progress
    )
    direction.metadata["settings"]["best_layer"] = int(report.best_layer)
    direction.metadata["settings"]["layer_rule"] = "auroc"
    direction.metadata["settings"]["layer_choice"] = (
        f"highest AUROC of the projection score on the held-out test half "
        f"(hash {data.get('test_hash')}), never on an evaluation benchmark"
    )
    return direction, report


def split_transfer(
    splits: Mapping[str, ActivationSplit],
    directions: Mapping[str, Direction] | None = None,
    *,
    n_permutations: int = 200,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[dict[str, Direction], TransferReport]:
    """Every source's direction scored on every source's held-out half (``transfer_report``).

    Args:
        splits: ``{source name: ActivationSplit}`` of one model.
        directions: directions already found, by source name; the others are found on their
            split's train half with ``find_direction`` (layer chosen on its test half).
        n_permutations, seed: as in ``transfer_report`` (and ``find_direction``).
        progress: progress bars of the layer reports of the directions found here.

    Returns:
        ``(directions, report)``: every source's direction, and the transfer report over the test
        halves, with their token lengths as the length baselines.
    """
    found = dict(directions or {})
    for name, split in splits.items():
        if name not in found:
            found[name], _ = find_direction(
                split, n_permutations=n_permutations, seed=seed, progress=progress
            )
    report = transfer_report(
        found,
        {name: (s.test_reasoning, s.test_memory) for name, s in splits.items()},
        lengths={
            name: (s.test_reasoning_lengths.tolist(), s.test_memory_lengths.tolist())
            for name, s in splits.items()
        },
        n_permutations=n_permutations,
        seed=seed,
    )
    return found, report
