"""Calibrated steering strength: the largest alpha whose damage stays within a budget.

A steering alpha means different things on different models, layers and modes (in the paper's
``"project"`` mode it compounds to about ``(1 + alpha)^L``), so instead of guessing it,
``calibrate`` measures how much each alpha changes the model on neutral text and returns, for each
sign, the largest ``|alpha|`` whose damage stays within ``max_kl``.

Damage
------
For a set of neutral prompts (default: ``neutral_prompts()``, the shipped file
``lirefs/builtin/neutral.jsonl``), each tokenized as for any trace (special tokens included) and
run teacher-forced on its own text (no generation)::

    damage(alpha) = mean over all non-padding (prompt, position) pairs, each pair weighing the same,
                    of KL(p_unsteered || p_steered) of the next-token distributions

with ``KL(p || q) = sum_v p_v (log p_v - log q_v)`` computed in float64 from the logits
(``log_softmax`` of the logits cast to float64). Locally the unsteered distributions are computed
once and reused for every alpha; remotely (NDIF, ``remote="local"``) each steered batch runs in one
trace with its unsteered twin, so only per-prompt sums travel. The steered pass applies the plan of ``lirefs.steer.plan(model, direction,
layer, alpha, mode)`` at every position (``tracers.apply_edit``), in one trace per batch of
left-padded prompts (mask-derived position ids).

Search
------
For each sign separately: a geometric grid ``start, start * factor, start * factor^2, ...``
(default ``factor = 2``; ``start`` from ``DEFAULT_START`` per mode), capped at the mode's largest
meaningful ``|alpha|`` (``ALPHA_LIMITS``), until an alpha exceeds the budget; then bisection
between the last alpha within the budget (``lo``) and the first beyond it (``hi``) until
``hi - lo <= rtol * lo`` (default ``rtol = 0.02``: the returned alpha is within 2% of the largest
alpha on that path that keeps the budget). The search assumes the damage grows with ``|alpha|``;
every alpha it tried is recorded, so a non-monotone curve is visible in the table and plot.
A side whose smallest step already exceeds the budget gets ``None`` (status ``"none"``); a side
that stays within the budget up to the limit gets the limit (status ``"limit"``).

Per alpha tried, a ``CalibrationPoint`` also records the perplexity ratio on the same text
(``exp`` of the mean steered minus mean unsteered negative log-likelihood of each next real token,
every predicted token weighing the same), the mode's effective scale (``Mode.effective_scale``:
``(1 + alpha)^L`` in ``"project"`` mode) and the shift of the direction's score ``h_l · r̂_l`` at
the last prompt token of held-out reasoning and memory questions (``feature_sets()``: the test
side of ``lirefs.data.load("builtin").split()``, ``FEATURE_PER_CLASS`` questions per class via
``.subset``), in units of the pooled within-class SD of the unsteered scores. The steered score is
read from the state block ``l`` consumes: the edits of the blocks before ``l`` run in the trace,
and the edit at residual index ``l`` itself is applied to the read score in float64 (``(1 + a)``
times it for the projection modes, ``+ alpha`` for ``"add"``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import tracers

from .batching import input_device, prompt_batches, tokenize
from .checks import check_prompts, residual_index
from .console import progress_bar
from .data import QuestionSets, builtin_text, format_prompt
from .data import load as load_sets
from .direction import Direction
from .errors import DataError, DirectionError, LayerError, MetadataMismatchError
from .models import model_info
from .steer import SteeringError, SteeringPlan, get_mode
from .steer import plan as steer_plan
from .store import check_metadata, hash_texts, make_metadata, write_json
from .tracing import BatchRunner, Remote, batch_runner

__all__ = [
    "ALPHA_LIMITS",
    "DEFAULT_START",
    "FEATURE_PER_CLASS",
    "KIND",
    "NEUTRAL_FILE",
    "Calibration",
    "CalibrationPoint",
    "calibrate",
    "feature_sets",
    "neutral_prompts",
]

#: ``metadata["kind"]`` of a saved calibration.
KIND = "calibration"
#: The shipped neutral prompts (``lirefs/builtin/<NEUTRAL_FILE>``).
NEUTRAL_FILE = "neutral.jsonl"
#: Held-out questions per class for the feature shift.
FEATURE_PER_CLASS = 16
#: First ``|alpha|`` of the grid, per mode.
DEFAULT_START: dict[str, float] = {"project": 0.005, "project-calibrated": 0.05, "add": 0.25}
#: Largest ``|alpha|`` searched, per mode and sign: ``(positive, negative)``. ``"project"``: a
#: per-edit ``-1`` removes the component at every edit and ``+1`` doubles it 3L times;
#: ``"project-calibrated"``: ``-1`` removes it, ``+100`` multiplies it by 101 overall;
#: ``"add"``: 1000 residual-stream units.
ALPHA_LIMITS: dict[str, tuple[float, float]] = {
    "project": (1.0, 1.0),
    "project-calibrated": (100.0, 1.0),
    "add": (1000.0, 1000.0),
}
#: Padded tokens per batch (each holds ``tokens x vocab`` float64 log-probabilities twice).
TOKEN_BUDGET = 512
#: Most alphas tried per sign (grid plus bisection) before the search stops.
MAX_STEPS = 40
_SIDES = ("positive", "negative")


# ---------------------------------------------------------------------------------------------
# the prompts


def neutral_prompts() -> list[str]:
    """The shipped neutral prompts, in file order (``lirefs/builtin/neutral.jsonl``).

    56 project-written lines: 28 short general-knowledge questions with their answer in the
    paper's format (``"Q: ...\\nA: answer."``) alternating with 28 plain sentences. None is a
    direction-set question (no arithmetic, capitals, calling codes, elements or US states).
    """
    where = f"built-in file lirefs/builtin/{NEUTRAL_FILE}"
    out = []
    for number, line in enumerate(builtin_text(NEUTRAL_FILE).splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise DataError(f'{where} line {number} has no string "text"; reinstall lirefs')
        out.append(row["text"])
    return out


def feature_sets(per_class: int = FEATURE_PER_CLASS) -> QuestionSets:
    """Held-out questions for the feature shift: ``load("builtin").split()[1].subset(per_class)``.

    The test side of the built-in direction set's default split (``test_fraction=0.3``, seed 0),
    so a direction built on the train side (as ``lirefs direction`` and the demo do) never saw them.
    """
    return load_sets("builtin").split()[1].subset(per_class)


# ---------------------------------------------------------------------------------------------
# the result


@dataclass(frozen=True)
class CalibrationPoint:
    """What one alpha does.

    Attributes:
        alpha: the alpha as the mode reads it.
        kl: damage, the mean next-token KL (nats) over all (prompt, position) pairs; ``inf`` when
            the steered logits are not finite.
        ppl_ratio: steered / unsteered perplexity of the neutral text.
        shift_reasoning / shift_memory: mean change of the direction's score on the held-out
            reasoning / memory questions, in pooled SDs of the unsteered scores.
        effective_scale: the mode's overall factor on the component (``None`` for ``"add"``).
        within: ``kl <= max_kl``.
        stage: ``"grid"``, ``"bisect"`` or ``"ablate"``.
    """

    alpha: float
    kl: float
    ppl_ratio: float
    shift_reasoning: float
    shift_memory: float
    effective_scale: float | None
    within: bool
    stage: str


@dataclass
class Calibration:
    """The calibrated alphas of one direction, layer and mode on one model (``calibrate``).

    Attributes:
        alpha_max: largest positive alpha within the budget, or ``None`` (``status["positive"]``
            says why: ``"none"`` when even the smallest step exceeds it).
        alpha_min: most negative alpha within the budget, or ``None``.
        max_kl: the damage budget (nats).
        mode: the steering mode.
        layer: the residual index of the direction (and where ``"add"`` adds it).
        status: per side (``"positive"``, ``"negative"``): ``"found"`` (bisected to ``rtol``),
            ``"limit"`` (within budget up to ``ALPHA_LIMITS``), ``"none"`` (the first step already
            exceeds it) or ``"ablate"`` (mode ``"ablate"``: one point, no alpha to choose).
        next_above: per side, the smallest ``|alpha|`` tried beyond the chosen one that exceeded
            the budget (signed), or ``None``.
        points: every alpha tried, in the order tried.
        prompts_hash / n_prompts / n_pairs: the neutral text (``hash_texts``), its prompt count and
            its (prompt, position) pair count.
        feature: the feature-shift set (name, hash, sizes, pooled SD).
        model: the model's info dict (``ModelInfo.to_dict()``), fingerprint included.
        unit_hash: the direction's unit hash at ``layer`` (``controls.unit_hash``).
        settings: search settings (start, factor, rtol, limits, token budget).
        metadata: the file metadata (``lirefs.store.make_metadata``).
    """

    alpha_max: float | None
    alpha_min: float | None
    max_kl: float
    mode: str
    layer: int
    status: dict[str, str]
    next_above: dict[str, float | None]
    points: list[CalibrationPoint]
    prompts_hash: str
    n_prompts: int
    n_pairs: int
    feature: dict[str, Any]
    model: dict[str, Any]
    unit_hash: str
    settings: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    # -- reading ---------------------------------------------------------------------------------

    @property
    def ablation_kl(self) -> float | None:
        """The ablation's damage (mode ``"ablate"``), else ``None``."""
        return self.points[0].kl if self.mode == "ablate" and self.points else None

    def point(self, alpha: float) -> CalibrationPoint:
        """The recorded point of ``alpha`` (``DataError`` when it was not tried)."""
        for p in self.points:
            if p.alpha == alpha:
                return p
        raise DataError(f"alpha {alpha!r} was not tried; tried: {[p.alpha for p in self.points]}")

    def resolve(self, spec: str | float) -> float:
        """An alpha from ``"calibrated"`` (``alpha_max``), ``"-calibrated"`` (``alpha_min``) or
        either divided by a positive number (``"calibrated/2"``, ``"-calibrated/4"``); a number is
        returned as it is.

        Raises:
            DataError: another text, a divisor that is not a positive finite number, or a side the
                calibration found no alpha for (the message says why).
        """
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            return float(spec)
        if not isinstance(spec, str):
            raise DataError(f"alpha spec must be a string or a number, got {type(spec).__name__}")
        m = re.fullmatch(r"\s*([+-]?)calibrated\s*(?:/\s*([^\s]+))?\s*", spec)
        if m is None:
            raise DataError(
                f"alpha {spec!r} is not 'calibrated', '-calibrated' or one of them divided by a "
                "number (e.g. 'calibrated/2')"
            )
        divisor = 1.0
        if m.group(2) is not None:
            try:
                divisor = float(m.group(2))
            except ValueError:
                divisor = math.nan
            if not math.isfinite(divisor) or divisor <= 0:
                raise DataError(f"alpha {spec!r}: the divisor must be a positive number")
        side = "negative" if m.group(1) == "-" else "positive"
        value = self.alpha_min if side == "negative" else self.alpha_max
        if value is None:
            why = {
                "none": f"even the smallest {side} step exceeds the budget max_kl={self.max_kl:g}",
                "ablate": "an ablation calibration has no alpha to choose",
            }.get(self.status.get(side, ""), "no alpha was found")
            raise DataError(
                f"alpha {spec!r}: {why}; recalibrate with a larger max_kl or a smaller start"
            )
        return value / divisor

    def within_budget(self, alpha: float) -> bool | None:
        """Whether steering with ``alpha`` stays within the budget, judged by the points tried.

        The rule: alpha 0 (no edit) is within. A positive alpha is within when
        ``alpha <= alpha_max``, over when ``alpha >= next_above["positive"]`` (an alpha at or below
        it was measured over the budget), else ``None`` (not measured: between the bisection's
        bounds, below the first step or beyond the search limit). A negative alpha alike, with
        ``alpha >= alpha_min`` and ``alpha <= next_above["negative"]``. Mode ``"ablate"``: the
        ablation (any alpha != 0) is within when its one point is.
        """
        alpha = float(alpha)
        if alpha == 0.0:
            return True
        if self.mode == "ablate":
            return self.points[0].within if self.points else None
        side = "positive" if alpha > 0 else "negative"
        bound = self.alpha_max if side == "positive" else self.alpha_min
        over = self.next_above.get(side)
        if bound is not None and abs(alpha) <= abs(bound):
            return True
        if over is not None and abs(alpha) >= abs(over):
            return False
        return None

    def check(self, model: Any, direction: Direction | None = None) -> None:
        """Refuse a model or direction this calibration was not made for.

        Args:
            model: a model name or fingerprint (``str``), a ``ModelInfo``, its dict, or a loaded
                model.
            direction: the ``Direction`` to steer with (compared by its unit hash at ``layer``).

        Raises:
            MetadataMismatchError: another model, or another direction (the message says which
                and how to fix it).
        """
        saved_name = self.model.get("name")
        saved_fp = self.model.get("fingerprint")
        fix = "run `lirefs calibrate` for this model and direction"
        if isinstance(model, str):
            if model not in (saved_name, saved_fp):
                raise MetadataMismatchError(
                    f"this calibration was made on model {saved_name!r} (fingerprint {saved_fp}), "
                    f"not {model!r}; {fix}"
                )
        elif model is not None:
            info = _info_dict(model)
            if info.get("fingerprint") != saved_fp:
                raise MetadataMismatchError(
                    f"this calibration was made on model {saved_name!r} (fingerprint {saved_fp}), "
                    f"but the model in use is {info.get('name')!r} (fingerprint "
                    f"{info.get('fingerprint')}); {fix}"
                )
        if direction is not None:
            if not isinstance(direction, Direction):
                raise DirectionError(
                    f"direction must be a lirefs.Direction, got {type(direction).__name__}"
                )
            try:
                ours = _unit_hash(direction.vector(self.layer))
            except LayerError:
                ours = None
            if ours != self.unit_hash:
                raise MetadataMismatchError(
                    f"this calibration was made for another direction (unit hash "
                    f"{self.unit_hash} at layer {self.layer}, the one given has {ours}); {fix}"
                )

    # -- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``save`` writes)."""
        return {
            "alpha_max": self.alpha_max,
            "alpha_min": self.alpha_min,
            "max_kl": self.max_kl,
            "mode": self.mode,
            "layer": self.layer,
            "status": dict(self.status),
            "next_above": dict(self.next_above),
            "points": [asdict(p) for p in self.points],
            "prompts_hash": self.prompts_hash,
            "n_prompts": self.n_prompts,
            "n_pairs": self.n_pairs,
            "feature": dict(self.feature),
            "unit_hash": self.unit_hash,
            "metadata": self.metadata,
        }

    def save(self, path: str | Path) -> Path:
        """Write the calibration as one JSON file (atomically) and return its path."""
        path = Path(path)
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(
        cls, path: str | Path, *, model: Any = None, direction: Direction | None = None
    ) -> Calibration:
        """Read a file written by ``save``; with ``model`` / ``direction``, ``check`` them too.

        Raises:
            DataError: not a calibration file (missing or malformed fields).
            MetadataMismatchError: another layer convention, kind, model or direction.
        """
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path} is not JSON ({exc.msg}); pass a file from `lirefs calibrate`"
            ) from None
        if not isinstance(raw, dict) or not isinstance(raw.get("metadata"), dict):
            raise DataError(f"{path} has no lirefs metadata; pass a file from `lirefs calibrate`")
        meta = raw["metadata"]
        check_metadata(meta, what=str(path), kind=KIND)
        try:
            points = [CalibrationPoint(**p) for p in raw["points"]]
            cal = cls(
                alpha_max=_opt_float(raw["alpha_max"]),
                alpha_min=_opt_float(raw["alpha_min"]),
                max_kl=float(raw["max_kl"]),
                mode=str(raw["mode"]),
                layer=int(raw["layer"]),
                status={str(k): str(v) for k, v in raw["status"].items()},
                next_above={str(k): _opt_float(v) for k, v in raw["next_above"].items()},
                points=points,
                prompts_hash=str(raw["prompts_hash"]),
                n_prompts=int(raw["n_prompts"]),
                n_pairs=int(raw["n_pairs"]),
                feature=dict(raw["feature"]),
                model=dict(meta.get("model") or {}),
                unit_hash=str(raw["unit_hash"]),
                settings=dict(meta.get("settings") or {}),
                metadata=meta,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(
                f"{path} is not a complete calibration file ({type(exc).__name__}: {exc}); "
                "recreate it with `lirefs calibrate`"
            ) from None
        if (meta.get("data") or {}).get("hash") != cal.prompts_hash:
            raise DataError(f"{path}: the prompts hash differs from its metadata; recreate it")
        if model is not None or direction is not None:
            cal.check(model, direction)
        return cal

    # -- display -------------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """One dict per alpha tried, sorted by alpha (the table's rows)."""
        return [asdict(p) for p in sorted(self.points, key=lambda p: p.alpha)]

    def table(self) -> Any:
        """A ``rich.table.Table``: every alpha tried, the chosen ones marked."""
        from rich.table import Table

        t = Table(
            title=(
                f"calibration: mode {self.mode}, layer {self.layer}, max KL {self.max_kl:g} "
                f"({self.n_prompts} neutral prompts, {self.n_pairs} positions)"
            )
        )
        for name in ("alpha", "KL", "ppl ratio", "shift R (SD)", "shift M (SD)", "eff. scale", ""):
            t.add_column(name, justify="right")
        chosen = {self.alpha_max, self.alpha_min} - {None}
        for p in sorted(self.points, key=lambda p: p.alpha):
            mark = "chosen" if p.alpha in chosen else ("ok" if p.within else "over")
            scale = "-" if p.effective_scale is None else f"{p.effective_scale:.4g}"
            t.add_row(
                f"{p.alpha:+.5g}",
                f"{p.kl:.4g}",
                f"{p.ppl_ratio:.4g}",
                f"{p.shift_reasoning:+.3g}",
                f"{p.shift_memory:+.3g}",
                scale,
                mark,
                style="bold" if mark == "chosen" else ("dim" if mark == "over" else None),
            )
        t.caption = self.summary()
        return t

    def summary(self) -> str:
        """One line: the chosen alphas (or why none)."""
        if self.mode == "ablate":
            within = "within" if self.points[0].within else "over"
            return f"ablation damage KL {self.points[0].kl:.4g} ({within} budget {self.max_kl:g})"
        parts = []
        for side, value in (("positive", self.alpha_max), ("negative", self.alpha_min)):
            name = "alpha_max" if side == "positive" else "alpha_min"
            status = self.status.get(side)
            if value is None:
                parts.append(f"{name}: none (the smallest step exceeds the budget)")
            else:
                extra = " (search limit reached)" if status == "limit" else ""
                parts.append(f"{name} = {value:+.5g}{extra}")
        return "; ".join(parts)

    def plot(self, path: str | Path) -> Path:
        """Damage and feature shift against alpha, as a PNG (needs matplotlib).

        Raises:
            PlotsUnavailableError: matplotlib is not installed (``pip install 'lirefs[plots]'``).
        """
        from .analysis.plots import MEMORY_COLOR, REASONING_COLOR, figure, save_figure

        pts = sorted(self.points, key=lambda p: p.alpha)
        xs = [p.alpha for p in pts]
        fig = figure(9.0, 3.8)
        ax_kl, ax_shift = fig.subplots(1, 2)
        finite = [(x, p.kl) for x, p in zip(xs, pts, strict=True) if math.isfinite(p.kl)]
        ax_kl.plot([x for x, _ in finite], [k for _, k in finite], "o-", color="black")
        ax_kl.axhline(self.max_kl, color="grey", linestyle="--", linewidth=1, label="budget")
        for value in (self.alpha_max, self.alpha_min):
            if value is not None:
                ax_kl.axvline(value, color="#009e73", linestyle=":", linewidth=1)
        if finite and min(k for _, k in finite) > 0:
            ax_kl.set_yscale("log")
        ax_kl.set_xlabel("alpha")
        ax_kl.set_ylabel("mean next-token KL (nats)")
        ax_kl.set_title(f"damage ({self.mode}, layer {self.layer})", fontsize=10)
        ax_kl.legend(fontsize=8)
        ax_kl.grid(alpha=0.3)
        ax_shift.plot(xs, [p.shift_reasoning for p in pts], "o-", color=REASONING_COLOR,
                      label="reasoning")  # fmt: skip
        ax_shift.plot(xs, [p.shift_memory for p in pts], "s--", color=MEMORY_COLOR,
                      label="memory")  # fmt: skip
        ax_shift.axhline(0.0, color="grey", linewidth=0.8)
        ax_shift.set_xlabel("alpha")
        ax_shift.set_ylabel("score shift (pooled SDs)")
        ax_shift.set_title("feature shift at the direction's layer", fontsize=10)
        ax_shift.legend(fontsize=8)
        ax_shift.grid(alpha=0.3)
        return save_figure(fig, path)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _info_dict(model: Any) -> dict[str, Any]:
    if isinstance(model, Mapping):
        return dict(model)
    if hasattr(model, "to_dict") and hasattr(model, "fingerprint"):
        return dict(model.to_dict())
    return model_info(model).to_dict()


def _unit_hash(vector: torch.Tensor) -> str:
    from .evaluation.controls import unit_hash

    return unit_hash(vector)


# ---------------------------------------------------------------------------------------------
# the measurements


@dataclass
class _Batch:
    """One batch of neutral prompts with its unsteered reference.

    ``inputs``: the trace inputs on the model's device; ``mask`` ``[b, t]`` float64, 1 at real
    tokens; ``targets`` ``[b, t - 1]`` the next token of each column; ``next_mask`` ``[b, t - 1]``
    1 where both the column and its next token are real. From the unsteered pass, computed once:
    ``ref`` ``[b, t, vocab]`` float64 probabilities ``p``, ``ref_plogp`` ``[b, t]`` float64
    ``sum_v p log p`` (so each alpha needs ``KL = sum_v p log p - sum_v p log q`` only),
    ``ref_nll`` the summed NLL of the batch.
    """

    inputs: dict[str, torch.Tensor]
    mask: torch.Tensor
    targets: torch.Tensor
    next_mask: torch.Tensor
    ref: torch.Tensor | None = None
    ref_plogp: torch.Tensor | None = None
    ref_nll: float = 0.0


def _damage_trace(
    runner: BatchRunner, batch: _Batch, steering: SteeringPlan
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One trace of a neutral batch: ``([b] KL sums, [b] NLL sums, logits or None)``.

    Without a reference (``batch.ref is None``) the KL sums are zeros and the logits
    ``[b, t, vocab]`` come back (the unsteered pass); with one, only the two ``[b]`` sums do.
    """
    model = runner.model
    edit = steering.tracer_kwargs()
    ref = batch.ref
    plogp = batch.ref_plogp
    mask = batch.mask
    targets = batch.targets
    next_mask = batch.next_mask
    want_logits = ref is None

    def run(kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        # Bound before the block, assigned a saved value inside it (on NDIF only saved values
        # come back). Keep each statement of the trace body on one line.
        nll: torch.Tensor | None = None
        extra: torch.Tensor | None = None
        with torch.inference_mode(), model.trace(batch.inputs, **kwargs):
            if edit["unit"] is not None:
                tracers.apply_edit(model, step=None, **edit)
            logits = model.output.logits
            logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
            picked = logp[:, :-1, :].gather(-1, targets.to(logp.device).unsqueeze(-1)).squeeze(-1)
            nll = (-picked * next_mask.to(logp.device)).sum(dim=-1).save()  # type: ignore[attr-defined]
            if want_logits:
                extra = logits.save()  # type: ignore[attr-defined]
            else:
                cross = (ref.to(logp.device) * logp).sum(dim=-1)  # type: ignore[union-attr]
                kl = plogp.to(logp.device) - cross  # type: ignore[union-attr]
                extra = (kl * mask.to(logp.device)).sum(dim=-1).save()  # type: ignore[attr-defined,union-attr]
        return nll, extra

    b = int(mask.shape[0])
    got_nll, got_extra = runner.run(run, b, f"a calibration batch of {b}")
    if got_nll is None or got_extra is None:
        raise DataError("the calibration trace returned nothing")
    nll = got_nll.detach().to("cpu", torch.float64)
    if want_logits:
        return torch.zeros(b, dtype=torch.float64), nll, got_extra.detach()
    return got_extra.detach().to("cpu", torch.float64), nll, None


def _paired_damage_trace(
    runner: BatchRunner, batch: _Batch, steering: SteeringPlan | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One remote trace of a neutral batch: ``([b] KL sums, [b] NLL sums)`` of ``steering``.

    Remotely the unsteered distributions are not sent back and forth (``[b, t, vocab]`` floats
    per batch and alpha, hundreds of MB for a large vocabulary): the trace runs the batch twice,
    unsteered in a first invoke and steered in a second, and only the two ``[b]`` sums return.
    ``steering=None``: the unsteered pass alone (its NLL; the KL sums are zeros).
    """
    model = runner.model
    edit = None if steering is None else steering.tracer_kwargs()
    mask, targets, next_mask = batch.mask, batch.targets, batch.next_mask

    def run(kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        # Bound before the blocks, assigned saved values inside them (on NDIF only saved values
        # come back); the second invoke reads the first's log-probabilities.
        nll: torch.Tensor | None = None
        kl: torch.Tensor | None = None
        with torch.inference_mode(), model.trace(**kwargs) as tr:
            with tr.invoke(batch.inputs):
                logp_p = torch.log_softmax(model.output.logits.to(torch.float64), dim=-1)
                if edit is None:
                    tgt = targets.to(logp_p.device).unsqueeze(-1)
                    picked = logp_p[:, :-1, :].gather(-1, tgt).squeeze(-1)
                    nll = (-picked * next_mask.to(logp_p.device)).sum(dim=-1).save()  # type: ignore[attr-defined]
            if edit is not None:
                with tr.invoke(batch.inputs):
                    if edit["unit"] is not None:
                        tracers.apply_edit(model, step=None, **edit)
                    logp_q = torch.log_softmax(model.output.logits.to(torch.float64), dim=-1)
                    tgt = targets.to(logp_q.device).unsqueeze(-1)
                    picked = logp_q[:, :-1, :].gather(-1, tgt).squeeze(-1)
                    nll = (-picked * next_mask.to(logp_q.device)).sum(dim=-1).save()  # type: ignore[attr-defined]
                    per_pos = (logp_p.exp() * (logp_p - logp_q)).sum(dim=-1)
                    kl = (per_pos * mask.to(logp_q.device)).sum(dim=-1).save()  # type: ignore[attr-defined]
        return nll, kl

    b = int(mask.shape[0])
    got_nll, got_kl = runner.run(run, b, f"a calibration batch of {b}")
    if got_nll is None or (edit is not None and got_kl is None):
        raise DataError("the calibration trace returned nothing")
    nll = got_nll.detach().to("cpu", torch.float64)
    if got_kl is None:
        return torch.zeros(b, dtype=torch.float64), nll
    return got_kl.detach().to("cpu", torch.float64), nll


def _score_trace(
    runner: BatchRunner,
    inputs: dict[str, torch.Tensor],
    steering: SteeringPlan,
    layer: int,
    unit: torch.Tensor,
) -> torch.Tensor:
    """``[b]`` float64 scores ``h_l · r̂`` at the last token, with the edits before index ``l``."""
    model = runner.model
    edit = steering.tracer_kwargs()
    before = steering.edits and steering.mode.projects and layer > 0
    if before:
        edit["blocks"] = [b for b in (edit["blocks"] or range(steering.n_blocks)) if b < layer]
        before = bool(edit["blocks"])

    def run(kwargs: dict[str, Any]) -> torch.Tensor | None:
        # bound before the block, assigned a saved value inside it (only saved values come back)
        scores: torch.Tensor | None = None
        with torch.inference_mode(), model.trace(inputs, **kwargs) as tr:
            if before:
                tracers.apply_edit(model, step=None, **edit)
            x = tracers.residual(model, layer)[:, -1, :]
            scores = (x.to(torch.float64) @ unit.to(x.device)).save()  # type: ignore[attr-defined]
            tr.stop()
        return scores

    b = int(inputs["input_ids"].shape[0])
    got = runner.run(run, b, f"a feature-score batch of {b}")
    if got is None:
        raise DataError("the feature-score trace returned nothing")
    return got.detach().to("cpu", torch.float64)


def _edit_at_layer(
    scores: torch.Tensor, steering: SteeringPlan, layer: int, n: int
) -> torch.Tensor:
    """The score after the edit at residual index ``layer`` itself (see the module docstring)."""
    if not steering.edits:
        return scores
    if steering.mode.projects:
        edited = layer < n and (steering.blocks is None or layer in steering.blocks)
        return scores * (1.0 + steering.per_edit) if edited else scores
    return scores + steering.per_edit if steering.layer == layer else scores


class _Meter:
    """Measures one alpha: damage on the neutral batches, feature scores on the held-out ones."""

    def __init__(
        self,
        model: Any,
        direction: Direction,
        layer: int,
        mode: str,
        prompts: list[str],
        features: QuestionSets,
        max_kl: float,
        runner: BatchRunner,
        batch_size: int | None,
        token_budget: int,
    ) -> None:
        self.model = model
        self.direction = direction
        self.layer = layer
        self.mode = mode
        self.max_kl = max_kl
        self.runner = runner
        self.n = model_info(model).n_layers
        device = input_device(model)
        ids = tokenize(model, prompts)
        self.n_pairs = sum(len(x) for x in ids)
        self.n_next = sum(len(x) - 1 for x in ids)
        if self.n_next < 1:
            raise DataError("the prompts have no next token to score; give longer prompts")
        self.batches: list[_Batch] = []
        for batch in prompt_batches(
            model, prompts, batch_size, token_ids=ids, token_budget=token_budget
        ):
            attn = batch.inputs["attention_mask"].to(torch.float64)
            input_ids = batch.inputs["input_ids"]
            self.batches.append(
                _Batch(
                    inputs={k: v.to(device) for k, v in batch.inputs.items()},
                    mask=attn,
                    targets=input_ids[:, 1:],
                    next_mask=attn[:, :-1] * attn[:, 1:],
                )
            )
        plain = steer_plan(model, None)
        self.ref_nll = 0.0
        #: remotely each steered batch runs with its unsteered twin (``_paired_damage_trace``)
        self.paired = not runner.remote.local
        for b in self.batches:
            if self.paired:
                b.ref_nll = float(_paired_damage_trace(runner, b, None)[1].sum())
                self.ref_nll += b.ref_nll
                continue
            _, nll, logits = _damage_trace(runner, b, plain)
            assert logits is not None
            logq = torch.log_softmax(logits.to(torch.float64), dim=-1)
            b.ref = logq.exp().to(device)
            b.ref_plogp = (b.ref.cpu() * logq).sum(dim=-1).to(device)
            del logits, logq
            b.ref_nll = float(nll.sum())
            self.ref_nll += b.ref_nll
        self.unit = direction.unit(layer)
        self.n_r = len(features.reasoning)
        fprompts = [format_prompt(q.text) for q in (*features.reasoning, *features.memory)]
        self.fbatches = [
            (batch.index, {k: v.to(device) for k, v in batch.inputs.items()})
            for batch in prompt_batches(model, fprompts, batch_size, token_budget=token_budget)
        ]
        self.n_f = len(fprompts)
        self.base_scores = self._scores(plain)
        r, m = self.base_scores[: self.n_r], self.base_scores[self.n_r :]
        dof = len(r) + len(m) - 2
        pooled = ((len(r) - 1) * r.var() + (len(m) - 1) * m.var()) / dof if dof > 0 else r.var()
        self.pooled_sd = float(pooled.sqrt())
        if not math.isfinite(self.pooled_sd) or self.pooled_sd == 0.0:
            raise DataError(
                f"the unsteered held-out scores at layer {layer} have pooled SD "
                f"{self.pooled_sd}; choose a layer where the direction varies"
            )

    def _scores(self, steering: SteeringPlan) -> torch.Tensor:
        out = torch.empty(self.n_f, dtype=torch.float64)
        for index, inputs in self.fbatches:
            s = _score_trace(self.runner, inputs, steering, self.layer, self.unit)
            out[torch.tensor(index)] = _edit_at_layer(s, steering, self.layer, self.n)
        return out

    def measure(self, alpha: float, stage: str) -> CalibrationPoint:
        steering = steer_plan(self.model, self.direction, layer=self.layer, alpha=alpha,
                              mode=self.mode)  # fmt: skip
        kl_total = 0.0
        nll_total = 0.0
        for b in self.batches:
            if self.paired:
                kl, nll = _paired_damage_trace(self.runner, b, steering)
            else:
                kl, nll, _ = _damage_trace(self.runner, b, steering)
            kl_total += float(kl.sum())
            nll_total += float(nll.sum())
        kl_mean = kl_total / self.n_pairs
        if not math.isfinite(kl_mean):
            kl_mean = math.inf
        ratio = math.exp((nll_total - self.ref_nll) / self.n_next)
        shift = (self._scores(steering) - self.base_scores) / self.pooled_sd
        shift_r = float(shift[: self.n_r].mean())
        shift_m = float(shift[self.n_r :].mean())
        return CalibrationPoint(
            alpha=float(alpha),
            kl=kl_mean,
            ppl_ratio=ratio if math.isfinite(ratio) else math.inf,
            shift_reasoning=shift_r,
            shift_memory=shift_m,
            effective_scale=steering.effective_scale,
            within=kl_mean <= self.max_kl,
            stage=stage,
        )


def _search(
    meter: _Meter, sign: float, start: float, factor: float, rtol: float, limit: float, bar: Any
) -> tuple[float | None, str, float | None, list[CalibrationPoint]]:
    """One side: ``(chosen |alpha| or None, status, first |alpha| beyond it or None, points)``."""
    points: list[CalibrationPoint] = []

    def tried(a: float, stage: str) -> bool:
        p = meter.measure(sign * a, stage)
        points.append(p)
        bar.advance(1)
        return p.within

    lo, hi = 0.0, None
    a = min(start, limit)
    while len(points) < MAX_STEPS:
        if not tried(a, "grid"):
            hi = a
            break
        lo = a
        if a >= limit:
            return lo, "limit", None, points
        a = min(a * factor, limit)
    if hi is None:
        return lo or None, "limit" if lo else "none", None, points
    if lo == 0.0:
        return None, "none", hi, points
    while hi - lo > rtol * lo and len(points) < MAX_STEPS:
        mid = 0.5 * (lo + hi)
        if tried(mid, "bisect"):
            lo = mid
        else:
            hi = mid
    return lo, "found", hi, points


def _check_positive(value: Any, name: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{name} must be a finite number > 0, got {value!r}; e.g. {example}")
    if value <= 0:
        raise DataError(f"{name} must be > 0, got {value!r}; e.g. {example}")
    return float(value)


def calibrate(
    model: Any,
    direction: Direction,
    *,
    layer: int | None = None,
    mode: str = "project",
    prompts: Sequence[str] | None = None,
    max_kl: float = 0.1,
    start: float | None = None,
    factor: float = 2.0,
    rtol: float = 0.02,
    feature_per_class: int = FEATURE_PER_CLASS,
    batch_size: int | None = None,
    token_budget: int = TOKEN_BUDGET,
    remote: bool | str | None = None,
    progress: bool | None = None,
) -> Calibration:
    """The largest positive and most negative alpha whose damage stays within ``max_kl``.

    Args:
        model: the model the direction was built on (``lirefs.load_model`` / ``lirefs.wrap``).
        direction: a ``Direction``.
        layer: residual index of the direction (default: the direction's recorded chosen layer).
        mode: ``"project"`` (the paper), ``"project-calibrated"``, ``"add"`` or ``"ablate"`` (one
            point: the ablation's damage, no alpha to choose).
        prompts: neutral prompts for the damage (default ``neutral_prompts()``), used as given
            (teacher-forced on their own text).
        max_kl: the damage budget in nats (mean next-token KL, see the module docstring).
        start: first ``|alpha|`` of the grid (default ``DEFAULT_START[mode]``).
        factor: grid ratio (> 1).
        rtol: bisection resolution: stop when ``hi - lo <= rtol * lo``.
        feature_per_class: held-out questions per class for the feature shift.
        batch_size: prompts per trace (``None``: fill ``token_budget`` padded tokens).
        token_budget: padded tokens per batch when ``batch_size`` is ``None``.
        remote: ``False``, ``True`` (NDIF), ``"local"`` or ``None`` (the model's own setting).
            Remotely each steered batch runs in one trace with its unsteered twin (two invokes)
            and only ``[b]`` sums come back: no ``[b, t, vocab]`` distributions travel.
        progress: progress bar (default: when stderr is a terminal).

    Returns:
        A ``Calibration``.

    Raises:
        DirectionError / MetadataMismatchError: the direction is not a ``Direction`` or belongs
            to another model.
        LayerError: no ``layer`` and the direction records none.
        SteeringError: an unknown mode.
        DataError: a bad budget or search setting, empty prompts.
    """
    if not isinstance(direction, Direction):
        raise DirectionError(
            f"direction must be a lirefs.Direction, got {type(direction).__name__}; load one with "
            "lirefs.Direction.load(path)"
        )
    direction.check_model(model)
    row = get_mode(mode)
    max_kl = _check_positive(max_kl, "max_kl", "0.1")
    factor = _check_positive(factor, "factor", "2")
    if factor <= 1.0:
        raise DataError(f"factor must be > 1 (the grid grows by it), got {factor!r}")
    rtol = _check_positive(rtol, "rtol", "0.02")
    if row.name != "ablate" and row.name not in DEFAULT_START:
        raise SteeringError(f"mode {row.name!r} cannot be calibrated")
    first = DEFAULT_START.get(row.name, 0.0) if start is None else start
    if row.name != "ablate":
        first = _check_positive(first, "start", str(DEFAULT_START[row.name]))
    info = model_info(model)
    n = info.n_layers
    layer = residual_index(direction.resolve_layer(layer), n)
    direction.unit(layer)  # refuses an all-zero direction there
    given = neutral_prompts() if prompts is None else check_prompts(prompts)
    source = f"lirefs/builtin/{NEUTRAL_FILE}" if prompts is None else "given"
    features = feature_sets(feature_per_class)
    # the one batched-trace loop (local or remote); the bar below counts alphas, not batches
    with batch_runner(model, Remote.of(model, remote), "calibration", 0, False) as runner:
        meter = _Meter(model, direction, layer, row.name, given, features, max_kl, runner,
                       batch_size, token_budget)  # fmt: skip
        limits = ALPHA_LIMITS.get(row.name, (1.0, 1.0))
        chosen, status, next_above, points = _run_search(
            meter, row.name, limits, (first, factor, rtol), progress
        )
    prompts_hash = hash_texts(given)
    unit = _unit_hash(direction.vector(layer))
    data = {
        "hash": prompts_hash,
        "source": source,
        "n_prompts": len(given),
        "n_pairs": meter.n_pairs,
    }
    feature = {
        "set": features.name,
        "hash": features.hash(),
        "n_reasoning": len(features.reasoning),
        "n_memory": len(features.memory),
        "pooled_sd": meter.pooled_sd,
        "read": "last prompt token, 'Q: ...\\nA: ' format",
    }
    settings = {
        "mode": row.name,
        "layer": layer,
        "max_kl": max_kl,
        "start": first,
        "factor": factor,
        "rtol": rtol,
        "limits": {"positive": limits[0], "negative": limits[1]},
        "token_budget": token_budget,
        "batch_size": batch_size,
        "unit_hash": unit,
        "direction_data_hash": (direction.metadata.get("data") or {}).get("hash"),
        "damage": "mean over non-padding (prompt, position) pairs of KL(p_unsteered || p_steered) "
        "of the next-token distributions, float64, teacher-forced",
        "search": "geometric grid start*factor^k then bisection to hi - lo <= rtol * lo",
    }
    meta = make_metadata(KIND, model=info.to_dict(), data=data, settings=settings)
    return Calibration(
        alpha_max=chosen["positive"],
        alpha_min=chosen["negative"],
        max_kl=max_kl,
        mode=row.name,
        layer=layer,
        status=status,
        next_above=next_above,
        points=points,
        prompts_hash=prompts_hash,
        n_prompts=len(given),
        n_pairs=meter.n_pairs,
        feature=feature,
        model=info.to_dict(),
        unit_hash=unit,
        settings=settings,
        metadata=meta,
    )


def _run_search(
    meter: _Meter,
    mode: str,
    limits: tuple[float, float],
    grid: tuple[float, float, float],
    progress: bool | None,
) -> tuple[
    dict[str, float | None], dict[str, str], dict[str, float | None], list[CalibrationPoint]
]:
    """Both sides' searches (``grid`` = start, factor, rtol) or the one ablation point:
    ``(chosen alpha, status, next alpha above the budget, points)`` per side."""
    first, factor, rtol = grid
    status: dict[str, str] = {}
    next_above: dict[str, float | None] = {}
    chosen: dict[str, float | None] = {}
    points: list[CalibrationPoint] = []
    # a rough count for the progress bar: the grid to the limit plus the bisection, per side
    steps = 1
    if mode != "ablate":
        sizes = [
            math.ceil(math.log(max(lim / first, 1.0)) / math.log(factor)) + 1 for lim in limits
        ]
        steps = sum(sizes) + 2 * math.ceil(math.log2(1.0 / rtol))
    with progress_bar("calibration", steps, progress) as bar:
        if mode == "ablate":
            points.append(meter.measure(-1.0, "ablate"))
            bar.advance(1)
            for side in _SIDES:
                status[side], next_above[side], chosen[side] = "ablate", None, None
            return chosen, status, next_above, points
        for side, sign, limit in zip(_SIDES, (1.0, -1.0), limits, strict=True):
            value, state, hi, pts = _search(meter, sign, first, factor, rtol, limit, bar)
            chosen[side] = None if value is None else sign * value
            status[side] = state
            next_above[side] = None if hi is None else sign * hi
            points += pts
    return chosen, status, next_above, points
