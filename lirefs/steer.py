"""Steered greedy generation along a Linear Reasoning Feature.

Modes (``r̂ = r / (||r|| + 1e-8)`` in float64, cast to each activation's dtype and device):

* ``"project"`` (the paper): source ``r̂`` from residual index ``layer``; in EVERY block, in order,
  the block input, the attention output and the MLP output get ``x <- x + alpha (x·r̂) r̂``. The
  component along ``r̂`` compounds to about ``(1 + alpha)^L`` (``effective_scale``).
* ``"project-calibrated"``: the same edits with a per-edit scale chosen so the component is
  multiplied by about ``1 + alpha`` overall: ``a = (1 + alpha)^(1/n) - 1`` over the ``n`` edited
  blocks (``calibrated_alpha``). ``alpha`` is then the TOTAL scale and must be ``>= -1``.
* ``"add"``: ``x <- x + alpha r̂`` on ``hidden_states[layer]`` (the input of block ``layer``).
* ``"ablate"``: ``"project"`` with ``alpha = -1`` (``alpha`` is ignored): the component along
  ``r̂`` is removed from every block input, attention output and MLP output.

``layers=`` limits the three projection modes to some blocks (default: all, as in the paper).
``positions`` picks tokens: ``"all"`` (the paper), ``"prompt"``, ``"generated"`` or negative indices
counted from the end of each prompt (prompt pass only); see ``tracers.edit``.

Generation follows the checked nnsight recipe: ``model.generate(max_new_tokens=..., do_sample=False)``
opened without inputs, one invoke with the left-padded batch (mask-derived position ids) whose
``for step in tr.all():`` loop applies the edit at every forward pass, and a second empty invoke
that saves ``tr.result``. ``alpha == 0`` (outside ``"ablate"``) runs no edit at all, which is plain
greedy generation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast, overload

import torch

import tracers

from .batching import input_device, prompt_batches, tokenize
from .checks import block_indices, check_prompts, residual_index
from .console import progress_bar
from .direction import Direction
from .errors import DataError, DirectionError, LayerError, LirefsError
from .models import model_info, model_layout
from .ndif import run_remote, trace_kwargs

__all__ = [
    "MODES",
    "GenerationOutput",
    "Steered",
    "SteeringError",
    "calibrated_alpha",
    "effective_scale",
    "generate",
    "scale_table",
    "steered",
    "sweep",
]

MODES = ("project", "project-calibrated", "add", "ablate")
_PROJECTING = ("project", "project-calibrated", "ablate")

Positions = str | Sequence[int]


#: Prompts per generate call when none is given.
GENERATE_BATCH_SIZE = 8


class SteeringError(LirefsError, ValueError):
    """A steering setting is invalid: unknown mode or positions, non-finite alpha, no direction."""


# ---------------------------------------------------------------------------------------------
# compounding


def effective_scale(alpha: float, n_layers: int) -> float:
    """``(1 + alpha)^n_layers``: roughly how much paper mode multiplies the ``r̂`` component.

    Each block's input edit multiplies the component the residual stream carries by ``1 + alpha``
    (the attention and MLP edits scale what those sub-layers add by the same factor), so after
    ``k`` blocks the stream's component is about ``(1 + alpha)^k`` times the unsteered one.
    SmolLM2-135M (30 blocks): ``effective_scale(0.1, 30)`` is about 17.4.
    """
    return float((1.0 + alpha) ** n_layers)


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
    return float((1.0 + total) ** (1.0 / n_layers) - 1.0)


def scale_table(
    alphas: Sequence[float], n_layers: int, *, mode: str = "project"
) -> list[dict[str, float]]:
    """Per-block compounding: row ``k`` is the factor after block ``k``'s input edit.

    Args:
        alphas: alpha values (one column each).
        n_layers: number of edited blocks ``L``.
        mode: ``"project"`` (factor ``(1 + alpha)^(k + 1)``) or ``"project-calibrated"``
            (``(1 + a)^(k + 1)`` with ``a = calibrated_alpha(alpha, L)``, ending at ``1 + alpha``).

    Returns:
        ``L`` dicts ``{"block": k, "<alpha>": factor, ...}``.
    """
    if mode not in ("project", "project-calibrated"):
        raise SteeringError(
            f"scale_table mode must be 'project' or 'project-calibrated', not {mode!r}"
        )
    per = [a if mode == "project" else calibrated_alpha(a, n_layers) for a in alphas]
    rows = []
    for k in range(n_layers):
        row: dict[str, float] = {"block": float(k)}
        for a, p in zip(alphas, per, strict=True):
            row[f"{a:g}"] = (1.0 + p) ** (k + 1)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class _Plan:
    """A validated steering setting, ready for a trace body."""

    mode: str
    unit: torch.Tensor | None  # [d_model] float64, None = no edit
    layer: int | None
    alpha: float  # per-edit scale actually applied (calibrated for "project-calibrated")
    blocks: list[int] | None
    positions: Positions


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
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise SteeringError(f"alpha must be a number, got {alpha!r}")
    if not math.isfinite(float(alpha)):
        raise SteeringError(f"alpha must be finite, got {alpha!r}")
    return float(alpha)


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


def _plan(
    model: Any,
    direction: Direction | torch.Tensor | None,
    layer: int | None,
    alpha: float,
    mode: str,
    positions: Any,
    layers: Sequence[int] | None,
) -> _Plan:
    if mode not in MODES:
        raise SteeringError(f"mode {mode!r} is not one of {MODES}")
    alpha = _check_alpha(alpha)
    positions = _check_positions(positions)
    info = model_info(model)
    n = info.n_layers
    layer = None if layer is None else residual_index(layer, n)
    if mode == "add":
        if layers is not None:
            raise SteeringError("layers= applies to the projection modes; 'add' edits one layer=")
        if layer is None and direction is not None:
            raise LayerError(f"mode 'add' needs layer=: the residual index 0..{n} to add r̂ at")
        blocks = None
    else:
        blocks = block_indices(layers, n, "layers")
    per_edit = alpha
    if mode == "ablate":
        per_edit = -1.0
    elif mode == "project-calibrated":
        per_edit = calibrated_alpha(alpha, n if blocks is None else len(blocks))
    if direction is None:
        if mode == "ablate" or alpha != 0.0:
            raise SteeringError(
                f"mode {mode!r} with alpha={alpha} needs direction= (a lirefs.Direction with "
                "layer=, or a [d_model] tensor)"
            )
        return _Plan(mode, None, layer, 0.0, blocks, positions)
    unit = _unit(direction, layer, model)
    # alpha = 0: no edit at all, exactly plain generation
    return _Plan(mode, None if per_edit == 0.0 else unit, layer, per_edit, blocks, positions)


# ---------------------------------------------------------------------------------------------
# generation


def _eos_ids(model: Any) -> set[int]:
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
    plan: _Plan,
    max_new_tokens: int,
    stop: list[str],
    remote: bool | str,
    layout: tracers.Layout,
) -> torch.Tensor:
    """One ``model.generate`` trace: ``[b, t + new]`` token ids (prompt columns included).

    Locally, ``stop`` goes to HF ``stop_strings`` so the batch ends once every row has stopped;
    a remote request leaves it out (the server would need this tokenizer) and runs to
    ``max_new_tokens``; ``_cut_at_stop`` then cuts both the same way.
    """
    kwargs = trace_kwargs(remote)
    pad = model.tokenizer.pad_token_id
    unit, alpha, where = plan.unit, plan.alpha, plan.positions
    mode, blocks = plan.mode, plan.blocks
    layer = cast(int, plan.layer)  # an int whenever mode "add" edits (checked by _plan)

    def run() -> torch.Tensor:
        # Bound before the block and assigned a saved value inside it: on NDIF the body runs on
        # the server and only saved values come back, pushed into this name.
        tokens: torch.Tensor | None = None
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
                    if unit is not None and mode == "add":
                        for step in tr.all():
                            tracers.add(model, layer, unit, alpha, where, step, layout)
                    elif unit is not None:
                        for step in tr.all():
                            tracers.paper_project(model, unit, alpha, blocks, where, step, layout)
                with tr.invoke():
                    tokens = tr.result.save()  # type: ignore[attr-defined]
        assert tokens is not None, "the generate trace returned no tokens"
        return tokens

    b = int(inputs["input_ids"].shape[0])
    out = run_remote(run, remote=remote, batch_size=b, what=f"a generate batch of {b} prompts")
    return out.detach().to("cpu")


def _trim(row: torch.Tensor, eos: set[int]) -> tuple[list[int], bool]:
    ids = [int(t) for t in row.tolist()]
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
    layers: Sequence[int] | None = None,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    remote: bool | str = False,
    batch_size: int = GENERATE_BATCH_SIZE,
    progress: bool | None = None,
) -> dict[float, GenerationOutput]:
    """``generate`` for several alphas, tokenizing and batching the prompts once.

    Returns:
        ``{alpha: GenerationOutput}`` in the order of ``alphas`` (repeats collapse).
    """
    prompts = _check_run(prompts, max_new_tokens, batch_size)
    stops = _check_stop(stop)
    alphas = [_check_alpha(a) for a in alphas]
    if not alphas:
        raise SteeringError("alphas is empty: pass at least one alpha (0.0 is plain generation)")
    alphas = list(dict.fromkeys(alphas))
    plans = {a: _plan(model, direction, layer, a, mode, positions, layers) for a in alphas}
    layout = model_layout(model)
    eos = _eos_ids(model)
    token_ids = tokenize(model, prompts)
    shortest = min(len(t) for t in token_ids)
    for plan in plans.values():
        if not isinstance(plan.positions, str) and min(plan.positions) < -shortest:
            raise SteeringError(
                f"position {min(plan.positions)} reaches before the start of the shortest prompt "
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
                out = _generate_batch(
                    model, inputs, plans[a], max_new_tokens, stops, remote, layout
                )
                assert out.dim() == 2 and out.shape[0] == len(batch.index), tuple(out.shape)
                for r, i in enumerate(batch.index):
                    rows[a][i] = _cut_at_stop(*_trim(out[r, t:], eos), stops, model.tokenizer)
                bar.advance(len(batch.index))
    tok = model.tokenizer
    result = {}
    for a in alphas:
        ids = [r[0] for r in rows[a]]
        plan = plans[a]
        settings = {
            "mode": mode,
            "alpha": a,
            "alpha_per_edit": plan.alpha if plan.unit is not None else 0.0,
            "layer": plan.layer,
            "blocks": plan.blocks,
            "positions": plan.positions
            if isinstance(plan.positions, str)
            else list(plan.positions),
            "max_new_tokens": int(max_new_tokens),
            "stop": stops,
            "model": model_info(model).name,
        }
        result[a] = GenerationOutput(
            prompts=list(prompts),
            texts=tok.batch_decode(ids, skip_special_tokens=True),
            token_ids=ids,
            stopped=[r[1] for r in rows[a]],
            settings=settings,
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
    layers: Sequence[int] | None = ...,
    max_new_tokens: int = ...,
    stop: Sequence[str] | None = ...,
    remote: bool | str = ...,
    batch_size: int = ...,
    progress: bool | None = ...,
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
    layers: Sequence[int] | None = ...,
    max_new_tokens: int = ...,
    stop: Sequence[str] | None = ...,
    remote: bool | str = ...,
    batch_size: int = ...,
    progress: bool | None = ...,
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
    layers: Sequence[int] | None = None,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    remote: bool | str = False,
    batch_size: int = GENERATE_BATCH_SIZE,
    progress: bool | None = None,
) -> GenerationOutput | dict[float, GenerationOutput]:
    """Greedy generation, optionally steered along ``direction``.

    Args:
        model: an nnsight model from ``lirefs.load_model`` / ``lirefs.wrap`` (or a ``Steered.model``).
        prompts: texts exactly as they enter the model (``"Q: ...\\nA: "`` for the paper's format).
        direction: a ``Direction`` (checked against the model) or a ``[d_model]`` tensor.
        layer: residual index ``0..L`` whose direction is used (``"add"``: also where it is added);
            default: the layer the direction recorded as chosen on held-out data.
        alpha: scale (see the module docstring for each mode); a list runs ``sweep``.
        mode: ``"project"`` (paper), ``"project-calibrated"``, ``"add"`` or ``"ablate"``.
        positions: ``"all"``, ``"prompt"``, ``"generated"`` or negative prompt-token indices.
        layers: blocks the projection modes edit (default all).
        max_new_tokens: generation length limit.
        stop: strings that end a row's generation once its generated text contains one (kept
            at the end of the text, as with HF ``stop_strings``). Locally a batch stops computing
            when every row has stopped; on NDIF the server generates to ``max_new_tokens`` and
            the rows are cut here, so both give the same tokens.
        remote: ``False``, ``True`` (NDIF) or ``"local"`` (nnsight's in-process remote path).
        batch_size: prompts per generate call (left-padded, sorted by length).
        progress: progress bar (default: when stderr is a terminal).

    Returns:
        ``GenerationOutput`` (``.texts``, ``.token_ids``: generated tokens only, cut before the
        first EOS and after the token that completes the first stop string), or
        ``{alpha: GenerationOutput}`` when ``alpha`` is a list.

    Raises:
        SteeringError: unknown mode or positions, non-finite alpha, no direction where one is
            needed, ``max_new_tokens < 1``.
        LayerError: ``layer`` outside ``0..L`` or missing, bad ``layers``.
        DirectionError / MetadataMismatchError: the direction belongs to another model or width.
        DataError: no prompts, or a prompt that is not a non-empty string.
    """
    many = not isinstance(alpha, (int, float)) and not isinstance(alpha, torch.Tensor)
    alphas = cast("list[float]", list(alpha) if many else [alpha])  # type: ignore[arg-type]
    out = sweep(
        model,
        prompts,
        alphas,
        direction=direction,
        layer=layer,
        mode=mode,
        positions=positions,
        layers=layers,
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

    def __init__(self, model: Any, plan: _Plan, layout: tracers.Layout) -> None:
        self.plan = plan
        self.original = model
        unit, alpha, positions = plan.unit, plan.alpha, plan.positions
        mode, blocks = plan.mode, plan.blocks
        layer = cast(int, plan.layer)  # an int whenever mode "add" edits (checked by _plan)
        with model.edit() as (tracer, edited):
            if unit is not None and mode == "add":
                for step in tracer.all():
                    tracers.add(edited, layer, unit, alpha, positions, step, layout)
            elif unit is not None:
                for step in tracer.all():
                    tracers.paper_project(edited, unit, alpha, blocks, positions, step, layout)
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
    layers: Sequence[int] | None = None,
) -> Steered:
    """A persistently steered copy of ``model`` (``with steered(...) as m:`` restores on exit).

    The settings mean what they mean in ``generate``. The edit applies to every forward pass of
    ``.model``: each step of ``model.generate`` (steps counted per call) and each ``model.trace``.
    """
    plan = _plan(model, direction, layer, alpha, mode, positions, layers)
    return Steered(model, plan, model_layout(model))
