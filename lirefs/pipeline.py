"""The pipeline: question set -> split -> collect -> direction -> held-out layer report -> transfer.

This module orchestrates the pieces below it (``data``, ``collect``, ``Direction``, ``analysis``,
``evaluation.layer_choice``); the CLI commands ``lirefs demo``, ``direction``, ``report`` and
``transfer`` only parse their options, call the functions here and print what comes back. The same
functions are the Python API of the whole run::

    import lirefs
    from lirefs import pipeline

    model = lirefs.load_model("smollm2-135m")
    result = pipeline.run_demo(model, "builtin", limit=40)     # nothing is written
    result.report.best_layer, result.transfer.auroc["builtin"]["builtin-matched"]
    result.save("report/")                                     # the demo's report folder

Steps, each callable alone:

* ``prepare_sets``: load a question set, refuse a ``limit`` whose held-out half is too small
  (``check_split_size``, before any model loads) and take the subset.
* ``collect_split``: split the set (train / test per class) and read every half's states into an
  ``ActivationSplit``.
* ``find_direction``: the ``Direction`` from the train half only, its layer chosen on the test half
  only (held-out AUROC), recorded in its metadata; ``causal_choice`` on ``held_out_questions`` is
  the alternative rule.
* ``transfer_on_sets`` / ``split_transfer`` / ``transfer_between``: every source's direction scored
  on every source's held-out half (the built-in set against ``builtin-matched``, whose classes share
  one surface form).
* ``write_layer_report`` / ``write_transfer`` / ``DemoResult.save``: the files, only when asked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import data
from .analysis.html import EvaluationSummary, write_html_report
from .analysis.report import LayerReport
from .analysis.splits import ActivationSplit, split_report
from .analysis.transfer import TransferReport, transfer_report
from .batching import token_lengths, tokenize
from .collect import collect_activations
from .data import QuestionSets
from .direction import Direction
from .errors import DataError, LirefsError
from .models import model_info
from .outputs import output_folder
from .reading import CHAT_FORMAT, PLAIN_FORMAT, common_suffix, parse_read
from .store import make_metadata

if TYPE_CHECKING:
    from .evaluation.layer_choice import CausalLayerChoice

__all__ = [
    "DEFAULT_PERMUTATIONS",
    "DEFAULT_SEED",
    "DEFAULT_SET",
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_TRANSFER_SETS",
    "DEMO_MIN_LIMIT",
    "MIN_HELD_OUT",
    "ActivationSplit",
    "DemoResult",
    "causal_choice",
    "check_held_out",
    "check_held_out_size",
    "check_split_size",
    "collect_split",
    "direction_file_part",
    "find_direction",
    "held_out_questions",
    "prepare_sets",
    "run_demo",
    "split_report",
    "split_transfer",
    "transfer_between",
    "transfer_on_sets",
    "write_layer_report",
    "write_transfer",
]

# -- domain constants ----------------------------------------------------------------------------

#: The question set the demo reads by default (``lirefs.data.load`` name).
DEFAULT_SET = "builtin"

#: The sets the demo scores its direction on when present: same surface form in both classes.
DEFAULT_TRANSFER_SETS = ("builtin-matched",)

#: Share of each class held out for the layer choice (``QuestionSets.split``).
DEFAULT_TEST_FRACTION = 0.3

#: Split (and subset) seed.
DEFAULT_SEED = 0

#: Label shuffles of the permutation baselines.
DEFAULT_PERMUTATIONS = 200

#: Held-out questions per class the layer choice needs: the folds of the probe's stratified
#: cross-validation (``lirefs.analysis.layer_report``'s default ``cv_folds``).
MIN_HELD_OUT = 5

#: The smallest demo ``limit``: the built-in sets' held-out halves reach ``MIN_HELD_OUT`` questions
#: per class at 16 with the default test fraction 0.3 (smaller fractions are checked too).
DEMO_MIN_LIMIT = 16


# -- the held-out size rules ---------------------------------------------------------------------


def check_held_out_size(n_reasoning: int, n_memory: int, where: str, fix: str) -> None:
    """Refuse a held-out half with fewer than ``MIN_HELD_OUT`` questions in a class.

    Raises:
        DataError: naming the counts, the minimum and ``fix`` (options the CLI has).
    """
    if min(n_reasoning, n_memory) >= MIN_HELD_OUT:
        return
    raise DataError(
        f"{where} {n_reasoning} reasoning and {n_memory} memory held-out questions; the layer "
        f"choice needs at least {MIN_HELD_OUT} per class (the probe's {MIN_HELD_OUT}-fold "
        f"cross-validation): {fix}"
    )


def check_split_size(sets: Any, *, test_fraction: float, seed: int, limit: int | None) -> None:
    """Refuse, before any model loads, a ``limit`` whose held-out half is too small.

    ``sets`` is the whole question set (before ``limit``). The smallest limit that works with
    this ``test_fraction`` and ``seed`` is searched for and named in the message (in the CLI's
    words: ``--limit``, ``--test-fraction``).

    Raises:
        DataError: a class of the held-out half would hold fewer than ``MIN_HELD_OUT`` questions.
    """
    chosen = sets if limit is None else sets.subset(limit, seed=seed)
    _, test = chosen.split(test_fraction=test_fraction, seed=seed)
    n_r, n_m = len(test.reasoning), len(test.memory)
    if min(n_r, n_m) >= MIN_HELD_OUT:
        return
    largest = max(len(sets.reasoning), len(sets.memory))
    minimum = None
    if limit is not None:
        for candidate in range(limit + 1, largest + 1):
            _, test = sets.subset(candidate, seed=seed).split(
                test_fraction=test_fraction, seed=seed
            )
            if min(len(test.reasoning), len(test.memory)) >= MIN_HELD_OUT:
                minimum = candidate
                break
    if minimum is not None:
        fix = f"use --limit {minimum} or more (or a larger --test-fraction)"
    else:
        fix = "use a larger --test-fraction or a question set with more questions"
    where = f"--limit {limit} leaves" if limit is not None else f"{sets.name!r} has only"
    check_held_out_size(n_r, n_m, f"{where} (with --test-fraction {test_fraction:g})", fix)


def prepare_sets(
    name: str = DEFAULT_SET,
    *,
    limit: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = DEFAULT_SEED,
) -> QuestionSets:
    """``lirefs.data.load(name)``, checked for its held-out size, then cut to ``limit`` per class.

    Raises:
        DataError: an unknown set, or a held-out half below ``MIN_HELD_OUT`` per class.
    """
    sets = data.load(name)
    check_split_size(sets, test_fraction=test_fraction, seed=seed, limit=limit)
    return sets if limit is None else sets.subset(limit, seed=seed)


# -- split -> collect -> direction ---------------------------------------------------------------


def collect_split(
    model: Any,
    sets: QuestionSets,
    *,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = DEFAULT_SEED,
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

    Returns:
        An ``ActivationSplit``: four ``[n, L + 1, d_model]`` float32 state tensors, the test
        prompts' token lengths, and metadata (model, data hashes and counts, settings).
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


def find_direction(
    split: ActivationSplit,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
    progress: bool | None = None,
) -> tuple[Direction, LayerReport]:
    """The direction from the train half, its layer chosen on the test half.

    Returns:
        ``(direction, report)``: ``direction.metadata["settings"]["best_layer"]`` holds the layer
        chosen by held-out AUROC (``report.best_layer``), with how it was chosen.
    """
    meta = dict(split.metadata.get("data") or {})
    direction = Direction.from_activations(
        split.train_reasoning,
        split.train_memory,
        model=split.metadata.get("model"),
        data={
            "name": meta.get("name"),
            "hash": meta.get("train_hash"),
            "set_hash": meta.get("hash"),
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
        f"(hash {meta.get('test_hash')}), never on an evaluation benchmark"
    )
    return direction, report


def check_held_out(split: ActivationSplit, where: str = "the split holds") -> None:
    """Refuse a split whose held-out half cannot choose a layer (``MIN_HELD_OUT`` per class).

    Args:
        split: e.g. ``ActivationSplit.load(path)``.
        where: how the message names the split (e.g. ``"acts.safetensors holds"``).

    Raises:
        DataError: a class of the held-out half holds fewer than ``MIN_HELD_OUT`` questions.
    """
    check_held_out_size(
        int(split.test_reasoning.shape[0]),
        int(split.test_memory.shape[0]),
        where,
        "collect again with a larger --limit (or none) or a larger --test-fraction",
    )


def held_out_questions(split: ActivationSplit, set_name: str | None = None) -> QuestionSets:
    """The held-out half of the question set ``split`` was collected from, rebuilt and checked.

    The set is ``set_name`` or the name the split records, split with the split's recorded test
    fraction and seed; its hash must be the split's test half. Cheap (no model), so callers run it
    before any work: a collection whose held-out half cannot be rebuilt (one made with a ``limit``
    samples its questions) fails at once.

    Raises:
        DataError: no set name, a sampled collection, or a held-out half that is not the split's.
    """
    meta = split.metadata or {}
    recorded = meta.get("data") or {}
    settings = meta.get("settings") or {}
    name = set_name or recorded.get("name")
    if not name:
        raise DataError("ACTIVATIONS records no question set name; pass --set (e.g. builtin)")
    if set_name is None and re.search(r"/subset\d+$", str(name)):
        raise DataError(
            f"ACTIVATIONS holds {name!r}, a sample collected with --limit, whose held-out half "
            "the causal rule cannot rebuild; collect the whole set (no --limit) for "
            "--layer-rule causal, or use --layer-rule auroc"
        )
    sets = data.load(name)
    _, test = sets.split(
        test_fraction=settings.get("test_fraction", DEFAULT_TEST_FRACTION),
        seed=settings.get("seed", DEFAULT_SEED),
    )
    if recorded.get("test_hash") not in (None, test.hash()):
        raise DataError(
            f"the held-out half of {name!r} (hash {test.hash()}) is not the one ACTIVATIONS was "
            f"split into (hash {recorded.get('test_hash')}): --layer-rule causal needs a "
            "collection of the whole set, made without --limit, and the --set it came from"
        )
    return test


def causal_choice(
    model: Any,
    direction: Direction,
    test: QuestionSets,
    *,
    alpha: float = 0.05,
    max_kl: float = 0.1,
    limit: int = 16,
    batch_size: int | None = None,
) -> CausalLayerChoice:
    """The causal layer rule on held-out questions (``held_out_questions``): the layer whose
    direction most moves the gold answers' log-probability at ``alpha`` among layers whose
    neutral-prompt KL stays ``<= max_kl`` (``lirefs.evaluation.layer_choice``). Record the choice
    with ``choice.annotate(direction)``."""
    from .evaluation.layer_choice import causal_layer_choice

    return causal_layer_choice(
        model, direction, test, alpha=alpha, max_kl=max_kl, limit=limit, batch_size=batch_size
    )


# -- transfer across sources ---------------------------------------------------------------------


def _transfer(
    directions: Mapping[str, Direction],
    splits: Mapping[str, ActivationSplit],
    *,
    n_permutations: int,
    seed: int,
) -> TransferReport:
    """``transfer_report`` over the splits' test halves, their token lengths as baselines."""
    return transfer_report(
        directions,
        {name: (s.test_reasoning, s.test_memory) for name, s in splits.items()},
        lengths={
            name: (s.test_reasoning_lengths.tolist(), s.test_memory_lengths.tolist())
            for name, s in splits.items()
        },
        n_permutations=n_permutations,
        seed=seed,
    )


def transfer_between(
    directions: Mapping[str, Direction],
    splits: Mapping[str, ActivationSplit],
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
) -> TransferReport:
    """Every direction scored on every split's held-out half, after checking they share a model.

    Args:
        directions: ``{source name: Direction}`` (e.g. loaded from ``lirefs direction`` files).
        splits: ``{test source name: ActivationSplit}``; only their test halves are scored.
        n_permutations, seed: as in ``transfer_report``.

    Raises:
        LirefsError: (its own subclass) a direction of another model than a split, naming both.
    """
    for d_name, direction in directions.items():
        for t_name, split in splits.items():
            try:
                direction.check_model(split.metadata.get("model"))
            except LirefsError as exc:
                raise type(exc)(f"direction {d_name!r} on test {t_name!r}: {exc}") from None
    return _transfer(directions, splits, n_permutations=n_permutations, seed=seed)


def split_transfer(
    splits: Mapping[str, ActivationSplit],
    directions: Mapping[str, Direction] | None = None,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
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
    return found, _transfer(found, splits, n_permutations=n_permutations, seed=seed)


def transfer_on_sets(
    lm: Any,
    base: str,
    split: ActivationSplit,
    direction: Direction,
    names: Sequence[str],
    *,
    required: bool,
    limit: int | None,
    test_fraction: float,
    seed: int,
    batch_size: int | None,
    remote: bool | str | None,
    permutations: int,
) -> tuple[TransferReport | None, dict[str, Direction], list[str]]:
    """The direction of ``base`` and of each set in ``names``, each scored on every set's test half.

    Each other set is split and collected like ``base``; its own direction is found on its train
    half. A set that ``lirefs.data.load`` does not know is an error when ``required``, otherwise a
    note (the returned report is then ``None`` if no other set is left).

    Returns:
        ``(report, directions, notes)``: the ``TransferReport`` (or ``None``), the directions by
        set name, and one line per skipped set.
    """
    splits = {base: split}
    notes: list[str] = []
    for name in names:
        if name == base or name in splits:
            continue
        try:
            sets = data.load(name)
        except DataError as exc:
            if required:
                raise
            notes.append(f"transfer test on {name!r} skipped: {exc}")
            continue
        check_split_size(sets, test_fraction=test_fraction, seed=seed, limit=limit)
        if limit is not None:
            sets = sets.subset(limit, seed=seed)
        splits[name] = collect_split(
            lm, sets, test_fraction=test_fraction, seed=seed, batch_size=batch_size, remote=remote
        )
    if len(splits) < 2:
        return None, {base: direction}, notes
    directions, report = split_transfer(
        splits, {base: direction}, n_permutations=permutations, seed=seed
    )
    return report, directions, notes


# -- the demo ------------------------------------------------------------------------------------


@dataclass
class DemoResult:
    """Everything ``run_demo`` found; nothing is written until ``save``.

    Attributes:
        data_set: the set's name as given (a ``lirefs.data.load`` name or a file path).
        model_name: the model's name as lirefs records it.
        split: the base set's ``ActivationSplit`` (train / test states, ``[n, L + 1, d_model]``).
        direction: found on the train half, layer chosen on the test half.
        report: the held-out ``LayerReport`` of ``direction``.
        transfer: the ``TransferReport`` across sets, or ``None`` (no transfer, or no other set).
        directions: every set's direction by name (``{data_set: direction}`` without transfer).
        notes: one line per transfer set that was skipped.
        seconds: time spent in ``run_demo``.
    """

    data_set: str
    model_name: str
    split: ActivationSplit
    direction: Direction
    report: LayerReport
    transfer: TransferReport | None = None
    directions: dict[str, Direction] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def save(
        self,
        out: str | Path,
        *,
        plots: bool = True,
        html: bool = True,
        activations: bool = False,
    ) -> list[Path]:
        """Write the report folder ``out`` and return the written paths, in this order.

        ``direction.safetensors``, ``report.json``, ``activations.safetensors`` (with
        ``activations``), the report PNGs (with ``plots``; needs matplotlib), each other set's
        ``direction-<set>.safetensors`` with ``transfer.json`` and its PNGs, and ``report.html``
        (with ``html``).
        """
        with output_folder(out, "demo") as staging:
            written = self._write(staging.path, plots=plots, html=html, activations=activations)
            return [staging.final(p) for p in written]

    def _write(self, out: Path, *, plots: bool, html: bool, activations: bool) -> list[Path]:
        """Every file of the report folder, written into ``out`` (the staging folder)."""
        written = [self.direction.save(out / "direction.safetensors")]
        report_plots: list[Path] = []
        transfer_plots: list[Path] = []
        written.append(self.report.save(out / "report.json"))
        if activations:
            written.append(self.split.save(out / "activations.safetensors"))
        if plots:
            from .analysis.plots import write_report_plots

            report_plots = write_report_plots(
                self.report, self.direction, self.split.test_reasoning, self.split.test_memory, out
            )
            written += report_plots
        if self.transfer is not None:
            for name, other in self.directions.items():
                if name != self.data_set:
                    part = direction_file_part(name)
                    written.append(other.save(out / f"direction-{part}.safetensors"))
            transfer_files = _transfer_files(self.transfer, out, plots=plots)
            transfer_plots = [p for p in transfer_files if p.suffix == ".png"]
            written += transfer_files
        if html:
            written.append(
                write_html_report(
                    out / "report.html",
                    self.report,
                    self.direction,
                    plots=report_plots,
                    transfer=self.transfer,
                    transfer_plots=transfer_plots,
                    title=f"lirefs demo: {self.model_name} on {self.data_set}",
                )
            )
        return written


def run_demo(
    model: Any,
    data_set: str = DEFAULT_SET,
    *,
    sets: QuestionSets | None = None,
    limit: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = DEFAULT_SEED,
    permutations: int = DEFAULT_PERMUTATIONS,
    transfer_sets: Sequence[str] | None = None,
    transfer: bool = True,
    batch_size: int | None = None,
    remote: bool | str | None = None,
    out: str | Path | None = None,
) -> DemoResult:
    """The whole pipeline on one model: the direction, its held-out layer report, its transfer.

    Reads the last-token states of ``data_set``'s train and test halves, builds the direction from
    the train half, reports per-layer separability on the test half against shuffled-label and
    prompt-length baselines, then scores the direction on each transfer set's test half beside
    that set's own direction.

    Args:
        model: from ``lirefs.load_model``.
        data_set: a ``lirefs.data.load`` name or a JSONL/CSV file; names the base in the transfer
            report and the files.
        sets: ``data_set`` already loaded and cut (``prepare_sets``); by default it is loaded here.
        limit: at most this many questions per class, in every set (default: all).
        test_fraction, seed: the split of every set.
        permutations: label shuffles of the baselines.
        transfer_sets: the other sets; each must load. By default ``DEFAULT_TRANSFER_SETS``,
            skipped with a note when this lirefs lacks one.
        transfer: ``False`` skips the transfer test.
        batch_size, remote: as in ``collect_activations``.
        out: when given, the report folder is written there (``DemoResult.save`` defaults).

    Raises:
        DataError: an unknown set, or a held-out half below ``MIN_HELD_OUT`` per class.
    """
    start = time.perf_counter()
    if sets is None:
        sets = prepare_sets(data_set, limit=limit, test_fraction=test_fraction, seed=seed)
    split = collect_split(
        model, sets, test_fraction=test_fraction, seed=seed, batch_size=batch_size, remote=remote
    )
    direction, report = find_direction(split, n_permutations=permutations, seed=seed)
    result = DemoResult(
        data_set, str(model_info(model).name), split, direction, report, None, {}, []
    )
    if transfer:
        result.transfer, result.directions, result.notes = transfer_on_sets(
            model,
            data_set,
            split,
            direction,
            list(transfer_sets or DEFAULT_TRANSFER_SETS),
            required=bool(transfer_sets),
            limit=limit,
            test_fraction=test_fraction,
            seed=seed,
            batch_size=batch_size,
            remote=remote,
            permutations=permutations,
        )
    result.seconds = time.perf_counter() - start
    if out is not None:
        result.save(out)
    return result


# -- the files -----------------------------------------------------------------------------------


def write_layer_report(
    out: str | Path,
    report: LayerReport,
    direction: Direction,
    split: ActivationSplit,
    *,
    plots: bool = True,
    layer: int | None = None,
    html: str | Path | None = None,
    evaluations: Sequence[EvaluationSummary] = (),
    transfer: TransferReport | None = None,
    transfer_plots: Sequence[str | Path] = (),
) -> tuple[Path, list[Path], Path | None]:
    """``report.json`` and (with ``plots``) the report PNGs in ``out``; ``html``: one HTML page.

    Args:
        out: the folder (created if missing).
        report: ``split_report(direction, split)``.
        direction: the direction the report scored.
        split: its test half is drawn in the per-layer figures.
        plots: write the PNGs (needs matplotlib).
        layer: the layer of the per-layer figures (default: the report's best layer).
        html: path of a self-contained ``report.html`` with the plots and ``evaluations``.
        evaluations: evaluation folders' summaries (``lirefs.analysis.load_evaluation``).
        transfer, transfer_plots: a ``TransferReport`` of this direction (e.g. ``lirefs demo``'s
            ``transfer.json``) and its PNGs, shown in the HTML page (its format-matched test in
            the summary).

    Returns:
        ``(report_json, plots, html)``: the written paths (``html`` is ``None`` when not asked).
    """
    page_path = None if html is None else Path(html)
    with output_folder(out, "report") as staging:
        inside = page_path is not None and _is_under(page_path, Path(out))
        report_json = report.save(staging.path / "report.json")
        written: list[Path] = []
        if plots:
            from .analysis.plots import write_report_plots

            written = write_report_plots(
                report,
                direction,
                split.test_reasoning,
                split.test_memory,
                staging.path,
                layer=layer,
            )
        page = None
        if page_path is not None:
            where = (
                staging.path / page_path.absolute().relative_to(Path(out).absolute())
                if inside
                else page_path
            )
            page = write_html_report(
                where,
                report,
                direction,
                plots=written,
                transfer=transfer,
                transfer_plots=transfer_plots,
                evaluations=list(evaluations),
            )
            page = staging.final(page) if inside else page
        files = (staging.final(report_json), [staging.final(p) for p in written])
    return files[0], files[1], page


def _is_under(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies inside ``folder`` (both made absolute; no link is followed)."""
    return path.absolute().is_relative_to(folder.absolute())


def write_transfer(report: TransferReport, out: str | Path, *, plots: bool = True) -> list[Path]:
    """``transfer.json`` and (with ``plots``) ``transfer.png`` / ``transfer_layers.png`` in ``out``.

    ``out`` is replaced as one unit (``lirefs.outputs.output_folder``); a folder that holds files
    lirefs did not write is refused.
    """
    with output_folder(out, "transfer") as staging:
        return [staging.final(p) for p in _transfer_files(report, staging.path, plots=plots)]


def _transfer_files(report: TransferReport, out: Path, *, plots: bool) -> list[Path]:
    """``transfer.json`` and its PNGs, written into the folder ``out`` as it is."""
    written = [report.save(out / "transfer.json")]
    if plots:
        from .analysis.plots import plot_transfer, plot_transfer_layers

        written.append(plot_transfer(report, out / "transfer.png"))
        written.append(plot_transfer_layers(report, out / "transfer_layers.png"))
    return written


def direction_file_part(name: str) -> str:
    """A set name (or a file path given as a set) as a safe part of a file name."""
    stem = Path(name).stem if ("/" in name or "." in name) else name
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in stem) or "set"
