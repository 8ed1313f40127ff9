"""Steered greedy generation along a Linear Reasoning Feature.

Modes (``r̂ = r / (||r|| + 1e-8)`` in float64, cast to each activation's dtype and device) are the
rows of ``MODES`` (``get_mode(name)``); each row says how it edits, its per-edit alpha, its
effective scale and which alphas it accepts:

* ``"project"`` (the paper): source ``r̂`` from residual index ``layer``; in EVERY block, in order,
  the block input, the attention output and the MLP output get ``x <- x + alpha (x·r̂) r̂``. The
  component along ``r̂`` compounds to about ``(1 + alpha)^L`` (``effective_scale``).
* ``"project-calibrated"``: the same edits with a per-edit scale chosen so the component is
  multiplied by about ``1 + alpha`` overall: ``a = (1 + alpha)^(1/n) - 1`` over the ``n`` edited
  blocks (``calibrated_alpha``). ``alpha`` is then the TOTAL scale and must be ``>= -1``.
* ``"add"``: ``x <- x + alpha r̂`` on ``hidden_states[layer]`` (the input of block ``layer``).
* ``"ablate"``: ``"project"`` with a per-edit ``alpha = -1``: the component along ``r̂`` is removed
  from every block input, attention output and MLP output. ``alpha`` must be 0 or -1 (both ablate
  here; ``lirefs evaluate`` and ``lirefs steer`` read 0 as the unsteered baseline).

``blocks=`` limits the three projection modes to some decoder blocks ``0..L-1`` (default: all, as
in the paper; ``layers=`` is its deprecated old name). ``positions`` picks tokens: ``"all"`` (the
paper), ``"prompt"``, ``"generated"`` or negative indices counted from the end of each prompt
(prompt pass only); see ``tracers.edit``.

A ``SteeringPlan`` (``plan(...)``) is one validated setting. Its ``tracer_kwargs()`` feed
``tracers.apply_edit``, the one tracer block behind the generation loop, persistent steering
(``steered``) and any trace of your own (e.g. teacher-forced log-probabilities).

Generation follows the checked nnsight recipe: ``model.generate(max_new_tokens=..., do_sample=False)``
opened without inputs, one invoke with the left-padded batch (mask-derived position ids) whose
``for step in tr.all():`` loop applies the edit at every forward pass, and a second empty invoke
that saves ``tr.result``. A setting whose per-edit alpha is 0 runs no edit at all, which is plain
greedy generation. A steered run whose residual stream turns NaN/inf (an alpha so large the
activations overflow) raises ``SteeringError`` naming the alpha instead of returning garbage.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast, overload

import torch

import tracers

from .batching import input_device, prompt_batches, tokenize
from .checks import block_indices, check_prompts, residual_index
from .console import progress_bar
from .direction import Direction
from .errors import ArchitectureError, DataError, DirectionError, LayerError, LirefsError
from .models import model_info, model_layout
from .ndif import resolve_remote, run_remote, trace_kwargs
from .reading import prompt_format_of, warn_read_mismatch

__all__ = [
    "MODES",
    "GenerationOutput",
    "Mode",
    "Steered",
    "SteeringError",
    "SteeringPlan",
    "StopStringWarning",
    "calibrated_alpha",
    "effective_scale",
    "eos_ids",
    "generate",
    "get_mode",
    "plan",
    "scale_table",
    "steered",
    "sweep",
    "trim_row",
    "unmatched_stops",
    "warn_unmatched_stops",
]

Positions = str | Sequence[int]


#: Prompts per generate call when none is given.
GENERATE_BATCH_SIZE = 8


class SteeringError(LirefsError, ValueError):
    """A steering setting is invalid: unknown mode or positions, non-finite alpha, no direction."""


class StopStringWarning(UserWarning):
    """A stop string occurred in none of a run's outputs while some ran to the token budget.

    Nothing is cut or lost (the texts are whole); the string is most likely mistyped (a shell's
    literal ``\\n`` for a newline) or the budget too small to reach it.
    """


# ---------------------------------------------------------------------------------------------
# compounding


def _power(base: float, n: float) -> float:
    """``base ** n`` as a float; ``±inf`` where it overflows instead of ``OverflowError``."""
    try:
        return float(base**n)
    except OverflowError:
        odd = float(n).is_integer() and int(n) % 2 == 1
        return -math.inf if base < 0 and odd else math.inf


def effective_scale(alpha: float, n_layers: int) -> float:
    """``(1 + alpha)^n_layers``: roughly how much paper mode multiplies the ``r̂`` component.

    Each block's input edit multiplies the component the residual stream carries by ``1 + alpha``
    (the attention and MLP edits scale what those sub-layers add by the same factor), so after
    ``k`` blocks the stream's component is about ``(1 + alpha)^k`` times the unsteered one.
    SmolLM2-135M (30 blocks): ``effective_scale(0.1, 30)`` is about 17.4. A factor beyond the
    float range is ``inf`` (never ``OverflowError``).
    """
    return _power(1.0 + alpha, n_layers)


def calibrated_alpha(total: float, n_layers: int) -> float:
    """Per-edit scale ``(1 + total)^(1 / n_layers) - 1`` whose compounding is ``1 + total``.

    Raises:
        SteeringError: ``total < -1`` (no real per-layer scale compounds to a negative factor) or
            ``n_layers < 1``.
    """
    if n_layers < 1:
        raise SteeringError(f"n_layers must be >= 1, got {n_layers}")
    if not math.isfinite(total) or total < -1.0:
        raise SteeringError(
            f"the calibrated total scale alpha={total!r} must be a finite number >= -1 (the "
            "component is multiplied by 1 + alpha overall); use alpha=-1 to remove it"
        )
    return _power(1.0 + total, 1.0 / n_layers) - 1.0


# ---------------------------------------------------------------------------------------------
# the modes table


@dataclass(frozen=True)
class Mode:
    """One steering mode: a row of ``MODES``.

    Attributes:
        name: the mode's name (``mode=`` and ``--mode``).
        summary: one line for help texts.
        projects: ``True`` for the projection modes, which edit the chosen blocks (block input,
            attention output, MLP output; ``blocks=`` applies); ``False`` for ``"add"``, which
            edits the one residual index ``layer``.
        edit: the ``tracers.apply_edit`` block that runs it (one of ``tracers.EDITS``).
        per_edit: ``(alpha, n_blocks) -> float``, the scale each edit applies (``n_blocks``: the
            number of edited blocks).
        effective_scale: ``(alpha, n_blocks) -> float | None``, about how much the ``r̂``
            component is multiplied overall (``inf`` beyond the float range); ``None`` where the
            mode does not scale it (``"add"`` shifts it).
        scale_formula: the effective scale in words, ``{n}`` standing for ``n_blocks``.
        accepts: ``alpha -> bool``, whether the mode gives that alpha a meaning.
        accepted: what ``accepts`` allows, in words (for messages).
        default_alphas: the alphas ``lirefs steer`` shows when none are given (0 = plain).
    """

    name: str
    summary: str
    projects: bool
    edit: str
    per_edit: Callable[[float, int], float]
    effective_scale: Callable[[float, int], float | None]
    scale_formula: str
    accepts: Callable[[float], bool]
    accepted: str
    default_alphas: tuple[float, ...] = (0.0, 0.1)

    def check_alpha(self, alpha: Any) -> float:
        """``alpha`` as a float if this mode accepts it, else ``SteeringError`` naming it."""
        value = _check_alpha(alpha)
        if not self.accepts(value):
            raise SteeringError(
                f"mode {self.name!r} does not accept alpha={alpha!r}: it takes {self.accepted}"
            )
        return value


def _same(alpha: float, n_blocks: int) -> float:
    return alpha


def _any_finite(alpha: float) -> bool:
    return math.isfinite(alpha)


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode(
            name="project",
            summary="the paper: x + alpha (x·r̂) r̂ in every block (compounds to (1 + alpha)^L)",
            projects=True,
            edit="paper_project",
            per_edit=_same,
            effective_scale=effective_scale,
            scale_formula="(1 + alpha)^{n}",
            accepts=_any_finite,
            accepted="any finite number",
        ),
        Mode(
            name="project-calibrated",
            summary="the paper's edits, alpha = the TOTAL scale: 1 + alpha over all edited blocks",
            projects=True,
            edit="paper_project",
            per_edit=calibrated_alpha,
            effective_scale=lambda alpha, n_blocks: 1.0 + alpha,
            scale_formula="1 + alpha (calibrated over {n} blocks)",
            accepts=lambda alpha: math.isfinite(alpha) and alpha >= -1.0,
            accepted="a finite total scale >= -1 (-1 removes the component)",
        ),
        Mode(
            name="add",
            summary="x + alpha r̂ at the residual index --layer only",
            projects=False,
            edit="add",
            per_edit=_same,
            effective_scale=lambda alpha, n_blocks: None,
            scale_formula="none (adds alpha r̂, does not scale the component)",
            accepts=_any_finite,
            accepted="any finite number",
        ),
        Mode(
            name="ablate",
            summary="remove the r̂ component everywhere the paper edits (alpha 0 or -1)",
            projects=True,
            edit="paper_project",
            per_edit=lambda alpha, n_blocks: -1.0,
            effective_scale=lambda alpha, n_blocks: 0.0,
            scale_formula="0 (removed)",
            accepts=lambda alpha: alpha in (0.0, -1.0),
            accepted="alpha 0 or -1 only: ablation removes the component whatever its size, so "
            "other values would be ignored (evaluate/steer read 0 as the unsteered baseline)",
            default_alphas=(0.0, -1.0),
        ),
    )
}


def get_mode(name: str | Mode) -> Mode:
    """The ``MODES`` row called ``name`` (a ``Mode`` is returned as it is).

    Raises:
        SteeringError: an unknown name; the message lists the known ones.
    """
    if isinstance(name, Mode):
        return name
    if not isinstance(name, str) or name not in MODES:
        raise SteeringError(f"mode {name!r} is not one of {', '.join(MODES)}")
    return MODES[name]


def scale_table(
    alphas: Sequence[float], n_layers: int, *, mode: str = "project"
) -> list[dict[str, float]]:
    """Per-block compounding: row ``k`` is the factor after block ``k``'s input edit.

    Args:
        alphas: alpha values (one column each).
        n_layers: number of edited blocks ``L``.
        mode: a projection mode: ``"project"`` (factor ``(1 + alpha)^(k + 1)``),
            ``"project-calibrated"`` (``(1 + a)^(k + 1)`` with ``a = calibrated_alpha(alpha, L)``,
            ending at ``1 + alpha``) or ``"ablate"`` (0).

    Returns:
        ``L`` dicts ``{"block": k, "<alpha>": factor, ...}`` (``inf`` beyond the float range).
    """
    row_mode = get_mode(mode)
    if not row_mode.projects:
        names = [m.name for m in MODES.values() if m.projects]
        raise SteeringError(
            f"scale_table mode must be a projection mode ({', '.join(names)}), not {mode!r}: "
            f"{row_mode.name!r} does not scale the component"
        )
    per = [row_mode.per_edit(a, n_layers) for a in alphas]
    rows = []
    for k in range(n_layers):
        row: dict[str, float] = {"block": float(k)}
        for a, p in zip(alphas, per, strict=True):
            row[f"{a:g}"] = _power(1.0 + p, k + 1)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class SteeringPlan:
    """A validated steering setting, ready for any trace body (build it with ``plan``).

    Attributes:
        mode: the ``MODES`` row.
        alpha: alpha as given.
        per_edit: the scale each edit applies (``mode.per_edit(alpha, n_blocks)``).
        unit: ``[d_model]`` float64 unit direction, or ``None`` when nothing is edited (no
            direction, or a per-edit scale of 0: plain generation exactly).
        layer: residual index ``0..L`` of the direction (and where ``"add"`` adds it).
        blocks: block numbers the projection modes edit (``None`` = all).
        n_blocks: how many blocks the projection modes edit.
        positions: ``"all"``, ``"prompt"``, ``"generated"`` or a tuple of negative indices.
        layout: the model's ``tracers.Layout``.

    Inside a trace of your own, pass ``tracer_kwargs()`` to ``tracers.apply_edit`` (plain values:
    it works locally, with ``remote="local"`` and on NDIF, where ``lirefs`` is not installed)::

        steering = lirefs.steer.plan(model, liref, layer=15, alpha=-0.1, mode="project")
        kw = steering.tracer_kwargs()
        with model.trace(inputs, **lirefs.ndif.trace_kwargs(remote)):
            tracers.apply_edit(model, step=None, **kw)   # step=None: a plain (prompt) pass
            logits = model.output.logits.save()
    """

    mode: Mode
    alpha: float
    per_edit: float
    unit: torch.Tensor | None
    layer: int | None
    blocks: list[int] | None
    n_blocks: int
    positions: Positions
    layout: tracers.Layout

    @property
    def edits(self) -> bool:
        """Whether the plan edits anything (``False``: plain forward passes)."""
        return self.unit is not None

    @property
    def effective_scale(self) -> float | None:
        """About how much the ``r̂`` component is multiplied overall (``None`` for ``"add"``)."""
        if not self.edits:
            return 1.0
        return self.mode.effective_scale(self.alpha, self.n_blocks)

    def tracer_kwargs(self) -> dict[str, Any]:
        """Arguments of ``tracers.apply_edit`` but ``model`` and ``step``, as plain values."""
        return {
            "edit": self.mode.edit,
            "unit": self.unit,
            "alpha": self.per_edit,
            "layer": self.layer,
            "blocks": self.blocks,
            "positions": self.positions,
            "layout": self.layout,
        }

    def settings(self) -> dict[str, Any]:
        """The setting as JSON-ready values (for output metadata)."""
        return {
            "mode": self.mode.name,
            "alpha": self.alpha,
            "alpha_per_edit": self.per_edit if self.edits else 0.0,
            "layer": self.layer,
            "blocks": self.blocks,
            "positions": self.positions
            if isinstance(self.positions, str)
            else list(self.positions),
        }


@dataclass(frozen=True)
class GenerationOutput:
    """Greedy generations, one per prompt, in the caller's order.

    Attributes:
        prompts: the prompts as given.
        texts: decoded generated text (special tokens skipped).
        token_ids: generated token ids only: no prompt, no left padding, and nothing from the first
            end-of-sequence token on (the EOS itself is dropped too).
        stopped: ``True`` where the row produced an end-of-sequence token or a stop string before
            ``max_new_tokens``.
        settings: mode, alpha, per-edit alpha, layer, blocks, positions, max_new_tokens, stop.
    """

    prompts: list[str]
    texts: list[str]
    token_ids: list[list[int]]
    stopped: list[bool]
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise SteeringError(f"alpha must be a number, got {alpha!r}")
    if not math.isfinite(float(alpha)):
        raise SteeringError(f"alpha must be finite, got {alpha!r}")
    return float(alpha) + 0.0  # -0.0 -> 0.0


def _check_positions(positions: Any) -> Positions:
    if isinstance(positions, str):
        if positions not in tracers.POSITIONS:
            raise SteeringError(
                f"positions {positions!r} is not one of {tracers.POSITIONS} nor a list of negative "
                "token indices (e.g. [-1] for the last prompt token)"
            )
        return positions
    try:
        idx = list(positions)
    except TypeError:
        raise SteeringError(
            f"positions must be 'all', 'prompt', 'generated' or a list of ints, got {positions!r}"
        ) from None
    bad = [i for i in idx if isinstance(i, bool) or not isinstance(i, int) or i >= 0]
    if not idx or bad:
        raise SteeringError(
            f"explicit positions must be a non-empty list of negative ints counted from the end of "
            f"each prompt (left padding makes other indices differ per batch), got {positions!r}"
        )
    return tuple(idx)


def _unit(direction: Direction | torch.Tensor, layer: int | None, model: Any) -> torch.Tensor:
    info = model_info(model)
    if isinstance(direction, Direction):
        direction.check_model(model)
        if layer is None:
            layer = direction.chosen_layer
        if layer is None:
            raise LayerError(
                f"a Direction has one vector per residual index 0..{direction.n_layers} and this "
                "one records no chosen layer; pass layer=... (e.g. report.best_layer)"
            )
        vector = direction.vector(layer)
    elif isinstance(direction, torch.Tensor):
        if direction.dim() != 1 or direction.shape[0] != info.d_model:
            raise DirectionError(
                f"a direction tensor must be [d_model] = [{info.d_model}] for model "
                f"{info.name!r}, got {tuple(direction.shape)}"
            )
        vector = direction.detach().to("cpu", torch.float64)
    else:
        raise DirectionError(
            f"direction must be a lirefs.Direction or a [d_model] tensor, got "
            f"{type(direction).__name__}"
        )
    norm = float(vector.norm())
    if not math.isfinite(norm) or norm == 0.0:
        where = f" at layer {layer}" if layer is not None else ""
        raise DirectionError(
            f"the direction{where} has norm {norm}: it cannot be normalised; choose another layer"
        )
    return tracers.unit_vector(vector)


def _renamed_blocks(
    blocks: Sequence[int] | None, layers: Sequence[int] | None, where: str
) -> Sequence[int] | None:
    """``blocks`` from the new keyword or (deprecated, with a warning) the old ``layers=``."""
    if layers is None:
        return blocks
    if blocks is not None:
        raise SteeringError(f"{where}: pass blocks= only (layers= is its deprecated old name)")
    warnings.warn(
        f"{where}(layers=...) is deprecated: these are block numbers 0..L-1, pass blocks=... "
        "(layers= means residual indices 0..L everywhere else); layers= goes in the next release",
        DeprecationWarning,
        stacklevel=3,
    )
    return layers


def plan(
    model: Any,
    direction: Direction | torch.Tensor | None,
    layer: int | None = None,
    alpha: float = 0.0,
    mode: str | Mode = "project",
    positions: Positions = "all",
    blocks: Sequence[int] | None = None,
) -> SteeringPlan:
    """Check one steering setting against ``model`` and return it as a ``SteeringPlan``.

    Args:
        model: the nnsight model the plan will edit.
        direction: a ``Direction`` (checked against the model), a ``[d_model]`` tensor, or
            ``None`` (then only a setting without any edit is valid).
        layer: residual index ``0..L`` whose direction is used (``"add"``: also where it is
            added); default: the layer the direction recorded as chosen.
        alpha: the scale, read as ``mode`` reads it.
        mode: a name in ``MODES`` or a ``Mode``.
        positions: ``"all"``, ``"prompt"``, ``"generated"`` or negative prompt-token indices.
        blocks: block numbers ``0..L-1`` the projection modes edit (default all).

    Raises:
        SteeringError: unknown mode or positions, an alpha the mode does not accept, no direction
            where one is needed, ``blocks`` with ``"add"``.
        LayerError: ``layer`` outside ``0..L`` or missing, bad ``blocks``.
        DirectionError / MetadataMismatchError: the direction does not fit the model.
    """
    row = get_mode(mode)
    alpha = row.check_alpha(alpha)
    where = _check_positions(positions)
    n = model_info(model).n_layers
    layer = None if layer is None else residual_index(layer, n)
    if row.projects:
        chosen = block_indices(blocks, n, "blocks")
    else:
        if blocks is not None:
            raise SteeringError(
                f"blocks= applies to the projection modes; {row.name!r} edits the one "
                "residual index layer="
            )
        if layer is None and direction is not None:
            raise LayerError(
                f"mode {row.name!r} needs layer=: the residual index 0..{n} to add r̂ at"
            )
        chosen = None
    n_blocks = n if chosen is None else len(chosen)
    per_edit = row.per_edit(alpha, n_blocks)
    layout = model_layout(model)
    missing = [kind for kind in ("attn", "mlp") if getattr(layout, kind) is None]
    if row.projects and per_edit != 0.0 and missing:
        raise ArchitectureError(
            f"mode {row.name!r} edits each block's attention and MLP outputs, but this model's "
            f"layout has no {' or '.join(missing)} sub-module whose output is [batch, tokens, "
            "d_model] (OPT runs its MLP on a flattened view); use mode='add'"
        )
    if direction is None:
        if per_edit != 0.0:
            raise SteeringError(
                f"mode {row.name!r} with alpha={alpha} needs direction= (a lirefs.Direction with "
                "layer=, or a [d_model] tensor)"
            )
        return SteeringPlan(row, alpha, 0.0, None, layer, chosen, n_blocks, where, layout)
    unit = _unit(direction, layer, model)
    # a per-edit scale of 0: no edit at all, exactly plain generation
    unit_or_none = None if per_edit == 0.0 else unit
    return SteeringPlan(row, alpha, per_edit, unit_or_none, layer, chosen, n_blocks, where, layout)


# ---------------------------------------------------------------------------------------------
# generation


def eos_ids(model: Any) -> set[int]:
    """The ids HF ``generate`` stops a row on (generation config, else the tokenizer's EOS)."""
    config = getattr(model._module, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    if eos is None:
        eos = model.tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def _generate_batch(
    model: Any,
    inputs: dict[str, torch.Tensor],
    steering: SteeringPlan,
    max_new_tokens: int,
    stop: list[str],
    remote: bool | str,
) -> tuple[torch.Tensor, bool]:
    """One ``model.generate`` trace: ``[b, t + new]`` token ids (prompt columns included).

    Also returns whether the last token's residual state (entering the final norm) kept a finite
    float32 squared norm in every row at the last forward pass (always ``True`` without an edit).
    A state beyond that makes every norm return NaN or zeros; and a NaN at a position the model
    attends to spreads to every later token, so the last pass tells whether any pass overflowed.

    Locally, ``stop`` goes to HF ``stop_strings`` so the batch ends once every row has stopped;
    a remote request leaves it out (the server would need this tokenizer) and runs to
    ``max_new_tokens``; ``_cut_at_stop`` then cuts both the same way.
    """
    kwargs = trace_kwargs(remote)
    pad = model.tokenizer.pad_token_id
    edit = steering.tracer_kwargs()
    layout = steering.layout
    # the probe reads the stream entering the final norm, or (forward order) its output when
    # the edit itself is there ("add" at layer L)
    after_norm = not steering.mode.projects and steering.layer == model_info(model).n_layers

    def run() -> tuple[torch.Tensor, bool]:
        # Bound before the block and assigned a saved value inside it: on NDIF the body runs on
        # the server and only saved values come back, pushed into these names.
        tokens: torch.Tensor | None = None
        finite: torch.Tensor | None = None
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": False,
            "pad_token_id": pad,
        }
        if stop and remote is False:
            gen_kwargs.update(stop_strings=stop, tokenizer=model.tokenizer)
        with warnings.catch_warnings(), torch.inference_mode():
            # An open `tr.all()` loop ends by asking for one step the run never makes; nnsight
            # reports that as a warning by design (the tokens are read in the second invoke).
            # Keep every statement of the trace body on one line: nnsight reads it from source.
            warnings.filterwarnings("ignore", message=".*was never reached.*")
            with model.generate(**gen_kwargs, **kwargs) as tr:
                with tr.invoke(inputs):
                    if edit["unit"] is not None:
                        for step in tr.all():
                            tracers.apply_edit(model, step=step, **edit)
                            norm = tracers.final_norm(model, layout)
                            last = (norm.output if after_norm else norm.input)[:, -1].float()
                            finite = torch.isfinite(last.pow(2).sum(-1)).all().save()  # type: ignore[attr-defined]
                with tr.invoke():
                    tokens = tr.result.save()  # type: ignore[attr-defined]
        if tokens is None:
            raise SteeringError("the generate trace returned no tokens")
        return tokens, finite is None or bool(finite)

    b = int(inputs["input_ids"].shape[0])
    out, ok = run_remote(run, remote=remote, batch_size=b, what=f"a generate batch of {b} prompts")
    return out.detach().to("cpu"), ok


def _non_finite_error(steering: SteeringPlan) -> SteeringError:
    """The error for a steered run whose residual stream overflowed to NaN/inf."""
    mode = steering.mode
    scale = steering.effective_scale
    what = "" if scale is None else f" (effective scale of the r̂ component {scale:.3g})"
    return SteeringError(
        f"alpha={steering.alpha:g} in mode {mode.name!r}{what} drove the residual stream "
        "beyond the float range (NaN/inf), so the generations would be garbage; use a smaller "
        "|alpha| (the paper sweeps "
        "±0.05..±0.15 in 'project'; 'add' needs alpha of the order of the state norm)"
    )


def trim_row(
    row: torch.Tensor | Sequence[int], eos: set[int], stop: Sequence[str], tokenizer: Any
) -> tuple[list[int], bool]:
    """``(ids, stopped)``: a row's generated ids cut before the first EOS (``eos_ids``), then
    after the token that completes the first stop string; ``stopped`` says either happened.

    Every generation path (``generate``, evaluation's shared-prefix path) cuts its rows here, so
    they end at the same token.
    """
    return _cut_at_stop(*_trim(row, eos), stop, tokenizer)


def _trim(row: torch.Tensor | Sequence[int], eos: set[int]) -> tuple[list[int], bool]:
    ids = [int(t) for t in (row.tolist() if isinstance(row, torch.Tensor) else row)]
    for i, t in enumerate(ids):
        if t in eos:
            return ids[:i], True
    return ids, False


def _cut_at_stop(
    ids: list[int], stopped: bool, stop: Sequence[str], tokenizer: Any
) -> tuple[list[int], bool]:
    """``ids`` up to the first token whose decoded prefix contains a stop string.

    Containment only grows with the prefix, so the cut is found by bisection (about log2(len)
    decodes per row). Applied to local and remote outputs alike, so both end at the same token
    whether or not HF stopped the row early.
    """
    if not stop or not ids:
        return ids, stopped

    def hit(k: int) -> bool:
        text = tokenizer.decode(ids[:k], skip_special_tokens=True)
        return any(s in text for s in stop)

    if not hit(len(ids)):
        return ids, stopped
    lo, hi = 1, len(ids)  # hit(hi) is true; find the smallest such k
    while lo < hi:
        mid = (lo + hi) // 2
        if hit(mid):
            hi = mid
        else:
            lo = mid + 1
    return ids[:lo], True


def unmatched_stops(texts: Sequence[str], stop: Sequence[str] | None) -> list[str]:
    """The strings of ``stop`` that occur in none of ``texts`` (generated texts), in order."""
    return [s for s in stop or () if not any(s in text for text in texts)]


def warn_unmatched_stops(
    texts: Sequence[str],
    n_tokens: Sequence[int],
    stop: Sequence[str] | None,
    max_new_tokens: int,
    *,
    what: str = "outputs",
    stacklevel: int = 2,
) -> list[str]:
    """Warn (``StopStringWarning``) when a stop string occurred in no text and rows ran long.

    Args:
        texts: the generated texts of a run (``GenerationOutput.texts``, all alphas).
        n_tokens: each text's number of generated tokens (same order).
        stop: the run's stop strings.
        max_new_tokens: the run's budget; a row of that many tokens ran to it.
        what: how the message names the texts (e.g. ``"gsm8k outputs"``).

    Returns:
        The unmatched stop strings (empty when no warning was given).
    """
    if len(texts) != len(n_tokens):
        raise DataError(f"{len(texts)} texts but {len(n_tokens)} token counts")
    full = sum(n >= max_new_tokens for n in n_tokens)
    missing = unmatched_stops(texts, stop)
    if missing and full:
        names = ", ".join(repr(s) for s in missing)
        warnings.warn(
            f"stop string {names} occurred in none of the {len(texts)} {what}, and {full} ran "
            f"to the budget of {max_new_tokens} new tokens: those texts are kept whole; check the "
            "string (in a shell, $'\\n' gives a newline, '\\n' two characters) or raise "
            "max_new_tokens",
            StopStringWarning,
            stacklevel=stacklevel,
        )
        return missing
    return []


def _check_stop(stop: Any) -> list[str]:
    """``stop`` as a list of non-empty strings (``None`` -> ``[]``), or ``SteeringError``."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if not all(isinstance(s, str) and s for s in stops):
        raise SteeringError(f"stop must be a non-empty string or a list of them, got {stop!r}")
    return stops


def _check_run(prompts: Any, max_new_tokens: int, batch_size: int) -> list[str]:
    prompts = check_prompts(prompts)
    if (
        isinstance(max_new_tokens, bool)
        or int(max_new_tokens) != max_new_tokens
        or max_new_tokens < 1
    ):
        raise SteeringError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise DataError(f"batch_size must be an int >= 1, got {batch_size!r}")
    return prompts


def sweep(
    model: Any,
    prompts: Sequence[str],
    alphas: Sequence[float],
    *,
    direction: Direction | torch.Tensor | None = None,
    layer: int | None = None,
    mode: str = "project",
    positions: Positions = "all",
    blocks: Sequence[int] | None = None,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    remote: bool | str | None = None,
    batch_size: int = GENERATE_BATCH_SIZE,
    progress: bool | None = None,
    layers: Sequence[int] | None = None,
) -> dict[float, GenerationOutput]:
    """``generate`` for several alphas, tokenizing and batching the prompts once.

    Takes ``generate``'s arguments (``layers=``: deprecated old name of ``blocks=``).

    Returns:
        ``{alpha: GenerationOutput}`` in the order of ``alphas`` (repeats collapse).
    """
    blocks = _renamed_blocks(blocks, layers, "lirefs.sweep")
    return _sweep(
        model,
        prompts,
        alphas,
        direction=direction,
        layer=layer,
        mode=mode,
        positions=positions,
        blocks=blocks,
        max_new_tokens=max_new_tokens,
        stop=stop,
        remote=remote,
        batch_size=batch_size,
        progress=progress,
    )


def _sweep(
    model: Any,
    prompts: Sequence[str],
    alphas: Sequence[float],
    *,
    direction: Direction | torch.Tensor | None,
    layer: int | None,
    mode: str,
    positions: Positions,
    blocks: Sequence[int] | None,
    max_new_tokens: int,
    stop: Sequence[str] | None,
    remote: bool | str | None,
    batch_size: int,
    progress: bool | None,
) -> dict[float, GenerationOutput]:
    remote = resolve_remote(model, remote)
    prompts = _check_run(prompts, max_new_tokens, batch_size)
    stops = _check_stop(stop)
    if isinstance(alphas, (str, bytes)) or not isinstance(alphas, Sequence):
        raise SteeringError(f"alphas must be a list of numbers, got {alphas!r}")
    alphas = [_check_alpha(a) for a in alphas]
    if not alphas:
        raise SteeringError("alphas is empty: pass at least one alpha (0.0 is plain generation)")
    alphas = list(dict.fromkeys(alphas))
    plans = {a: plan(model, direction, layer, a, mode, positions, blocks) for a in alphas}
    eos = eos_ids(model)
    token_ids = tokenize(model, prompts)
    shortest = min(len(t) for t in token_ids)
    for steering in plans.values():
        where = steering.positions
        if not isinstance(where, str) and min(where) < -shortest:
            raise SteeringError(
                f"position {min(where)} reaches before the start of the shortest prompt "
                f"({shortest} tokens); use indices >= {-shortest}"
            )
    n = len(prompts)
    rows: dict[float, list[tuple[list[int], bool]]] = {a: [([], False)] * n for a in alphas}
    device = input_device(model)
    with progress_bar("generating", n * len(alphas), progress) as bar:
        for batch in prompt_batches(model, prompts, batch_size, token_ids=token_ids):
            inputs = {k: v.to(device) for k, v in batch.inputs.items()}
            t = inputs["input_ids"].shape[1]
            for a in alphas:
                out, finite = _generate_batch(
                    model, inputs, plans[a], max_new_tokens, stops, remote
                )
                if not finite:
                    raise _non_finite_error(plans[a])
                if out.dim() != 2 or out.shape[0] != len(batch.index):
                    raise SteeringError(
                        f"generate returned tokens of shape {tuple(out.shape)} for a batch of "
                        f"{len(batch.index)} prompts"
                    )
                for r, i in enumerate(batch.index):
                    rows[a][i] = trim_row(out[r, t:], eos, stops, model.tokenizer)
                bar.advance(len(batch.index))
    tok = model.tokenizer
    result = {}
    name = model_info(model).name
    for a in alphas:
        ids = [r[0] for r in rows[a]]
        settings = {
            **plans[a].settings(),
            "max_new_tokens": int(max_new_tokens),
            "stop": stops,
            "model": name,
        }
        result[a] = GenerationOutput(
            prompts=list(prompts),
            texts=tok.batch_decode(ids, skip_special_tokens=True),
            token_ids=ids,
            stopped=[r[1] for r in rows[a]],
            settings=settings,
        )
    warn_unmatched_stops(
        [t for o in result.values() for t in o.texts],
        [len(ids) for o in result.values() for ids in o.token_ids],
        stops,
        max_new_tokens,
        stacklevel=4,
    )
    return result


@overload
def generate(
    model: Any,
    prompts: Sequence[str],
    *,
    direction: Direction | torch.Tensor | None = ...,
    layer: int | None = ...,
    alpha: float = ...,
    mode: str = ...,
    positions: Positions = ...,
    blocks: Sequence[int] | None = ...,
    max_new_tokens: int = ...,
    stop: Sequence[str] | None = ...,
    remote: bool | str | None = ...,
    batch_size: int = ...,
    progress: bool | None = ...,
    layers: Sequence[int] | None = ...,
) -> GenerationOutput: ...


@overload
def generate(
    model: Any,
    prompts: Sequence[str],
    *,
    direction: Direction | torch.Tensor | None = ...,
    layer: int | None = ...,
    alpha: Sequence[float],
    mode: str = ...,
    positions: Positions = ...,
    blocks: Sequence[int] | None = ...,
    max_new_tokens: int = ...,
    stop: Sequence[str] | None = ...,
    remote: bool | str | None = ...,
    batch_size: int = ...,
    progress: bool | None = ...,
    layers: Sequence[int] | None = ...,
) -> dict[float, GenerationOutput]: ...


def generate(
    model: Any,
    prompts: Sequence[str],
    *,
    direction: Direction | torch.Tensor | None = None,
    layer: int | None = None,
    alpha: float | Sequence[float] = 0.0,
    mode: str = "project",
    positions: Positions = "all",
    blocks: Sequence[int] | None = None,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    remote: bool | str | None = None,
    batch_size: int = GENERATE_BATCH_SIZE,
    progress: bool | None = None,
    layers: Sequence[int] | None = None,
) -> GenerationOutput | dict[float, GenerationOutput]:
    """Greedy generation, optionally steered along ``direction``.

    Args:
        model: an nnsight model from ``lirefs.load_model`` / ``lirefs.wrap`` (or a ``Steered.model``).
        prompts: texts exactly as they enter the model (``"Q: ...\\nA: "`` for the paper's format).
        direction: a ``Direction`` (checked against the model) or a ``[d_model]`` tensor.
        layer: residual index ``0..L`` whose direction is used (``"add"``: also where it is added);
            default: the layer the direction recorded as chosen on held-out data.
        alpha: scale (see the module docstring for each mode); a list runs ``sweep``.
        mode: a name in ``MODES``: ``"project"`` (paper), ``"project-calibrated"``, ``"add"`` or
            ``"ablate"``.
        positions: ``"all"``, ``"prompt"``, ``"generated"`` or negative prompt-token indices.
        blocks: decoder block numbers ``0..L-1`` the projection modes edit (default all).
        max_new_tokens: generation length limit.
        stop: strings that end a row's generation once its generated text contains one (kept
            at the end of the text, as with HF ``stop_strings``). Locally a batch stops computing
            when every row has stopped; on NDIF the server generates to ``max_new_tokens`` and
            the rows are cut here, so both give the same tokens.
        remote: ``False``, ``True`` (NDIF) or ``"local"`` (nnsight's in-process remote path);
            ``None`` (default): what the model was loaded with (``load_model(remote=...)``).
        batch_size: prompts per generate call (left-padded, sorted by length).
        progress: progress bar (default: when stderr is a terminal).
        layers: deprecated old name of ``blocks`` (they are block numbers, not residual
            indices); warns, and goes in the next release.

    Returns:
        ``GenerationOutput`` (``.texts``, ``.token_ids``: generated tokens only, cut before the
        first EOS and after the token that completes the first stop string), or
        ``{alpha: GenerationOutput}`` when ``alpha`` is a list.

    Raises:
        SteeringError: unknown mode or positions, an alpha the mode does not accept, no
            direction where one is needed, ``max_new_tokens < 1``, a steered run whose states
            went NaN/inf (the message names the alpha).
        LayerError: ``layer`` outside ``0..L`` or missing, bad ``blocks``.
        DirectionError / MetadataMismatchError: the direction belongs to another model or width.
        DataError: no prompts, or a prompt that is not a non-empty string.

    Warns:
        ReadMismatchWarning: the direction was built from chat-template prompts and these are
            plain ``"Q: ...\\nA: "`` prompts, or the other way round.
        StopStringWarning: a ``stop`` string occurred in no output while some rows ran to
            ``max_new_tokens`` (the texts are kept whole).
    """
    blocks = _renamed_blocks(blocks, layers, "lirefs.generate")
    many = not isinstance(alpha, (numbers.Real, torch.Tensor))
    if many and (isinstance(alpha, (str, bytes)) or not isinstance(alpha, Sequence)):
        raise SteeringError(f"alpha must be a number or a list of numbers, got {alpha!r}")
    alphas = cast("list[float]", list(alpha) if many else [alpha])  # type: ignore[arg-type]
    if isinstance(direction, Direction) and not isinstance(prompts, str):
        # once per call, whatever the number of alphas: the direction's prompt framing vs these
        warn_read_mismatch(
            direction.metadata.get("settings"),
            prompt_format=prompt_format_of(model, list(prompts)),
            stacklevel=3,
        )
    out = _sweep(
        model,
        prompts,
        alphas,
        direction=direction,
        layer=layer,
        mode=mode,
        positions=positions,
        blocks=blocks,
        max_new_tokens=max_new_tokens,
        stop=stop,
        remote=remote,
        batch_size=batch_size,
        progress=progress,
    )
    return out if many else out[_check_alpha(alphas[0])]


# ---------------------------------------------------------------------------------------------
# persistent steering


class Steered:
    """A steered copy of a model: every trace or generate call of ``.model`` carries the edit.

    Built with nnsight's ``model.edit()`` on a shallow copy, so the original model is never
    changed. ``remove()`` (or leaving the ``with`` block) drops the stored edit: ``.model`` then
    behaves exactly like the original.

    Example::

        with lirefs.steered(model, liref, layer=15, alpha=-0.1) as steered_model:
            a = lirefs.generate(steered_model, prompts)      # steered
            b = lirefs.generate(steered_model, more_prompts) # steered
        # steered_model is plain again; `model` was never touched
    """

    def __init__(self, model: Any, steering: SteeringPlan) -> None:
        self.plan = steering
        self.original = model
        edit = steering.tracer_kwargs()
        with model.edit() as (tracer, edited):
            if edit["unit"] is not None:
                for step in tracer.all():
                    tracers.apply_edit(edited, step=step, **edit)
        self.model = edited
        self.active = True

    def remove(self) -> None:
        """Drop the edit; ``.model`` is plain afterwards (calling twice is harmless)."""
        self.model.clear_edits()
        self.active = False

    def __enter__(self) -> Any:
        return self.model

    def __exit__(self, *exc: object) -> None:
        self.remove()


def steered(
    model: Any,
    direction: Direction | torch.Tensor | None,
    *,
    layer: int | None = None,
    alpha: float = 0.1,
    mode: str = "project",
    positions: Positions = "all",
    blocks: Sequence[int] | None = None,
    layers: Sequence[int] | None = None,
) -> Steered:
    """A persistently steered copy of ``model`` (``with steered(...) as m:`` restores on exit).

    The settings mean what they mean in ``generate`` (``blocks``: decoder block numbers;
    ``layers=`` is its deprecated old name). The edit applies to every forward pass of
    ``.model``: each step of ``model.generate`` (steps counted per call) and each ``model.trace``.
    """
    blocks = _renamed_blocks(blocks, layers, "lirefs.steered")
    return Steered(model, plan(model, direction, layer, alpha, mode, positions, blocks))
