"""Greedy generation under a ``SteeringPlan``: the nnsight engine, ``generate`` and ``sweep``.

Generation follows the checked nnsight recipe: ``model.generate(max_new_tokens=...,
do_sample=False)`` opened without inputs, one invoke with the left-padded batch (mask-derived
position ids) whose ``for step in tr.all():`` loop applies the edit at every forward pass, and a
second empty invoke that saves ``tr.result``. A plan that edits nothing runs no edit at all, which
is plain greedy generation. A steered run whose residual stream turns NaN/inf (an alpha so large
the activations overflow) raises ``SteeringError`` naming the alpha instead of returning garbage.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch

import tracers

from ..batching import prompt_batches, tokenize
from ..checks import check_alpha, check_prompts
from ..direction import Direction
from ..errors import DataError, SteeringError, deprecated
from ..inputs import check_not_meta, check_stop, warn_beyond_context
from ..models import model_info
from ..reading import prompt_format_of, warn_read_mismatch
from ..tracing import Remote, batch_runner
from .engine import Prompts
from .modes import Mode
from .plan import Positions, SteeringPlan, renamed_blocks
from .plan import plan as plan_of
from .stopping import eos_ids, trim_row, warn_unmatched_stops

__all__ = [
    "GENERATE_BATCH_SIZE",
    "GenerationOutput",
    "NnsightEngine",
    "generate",
    "sweep",
]

#: Prompts per generate call when none is given.
GENERATE_BATCH_SIZE = 8


@dataclass(frozen=True)
class GenerationOutput:
    """Greedy generations, one per prompt, in the caller's order.

    Attributes:
        prompts: the prompts as given (token-id prompts: their decoded text).
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


def check_budget(max_new_tokens: Any) -> int:
    """``max_new_tokens`` as an int ``>= 1``, else ``SteeringError``."""
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, numbers.Real)
        or int(max_new_tokens) != max_new_tokens  # type: ignore[call-overload]
        or max_new_tokens < 1
    ):
        raise SteeringError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    return int(max_new_tokens)  # type: ignore[call-overload]


def _generate_batch(
    model: Any,
    inputs: dict[str, torch.Tensor],
    steering: SteeringPlan,
    max_new_tokens: int,
    stop: list[str],
    remote: Remote,
    kwargs: dict[str, Any],
) -> tuple[torch.Tensor, bool]:
    """One ``model.generate`` trace: ``[b, t + new]`` token ids (prompt columns included).

    Also returns whether the last token's residual state (entering the final norm) kept a finite
    float32 squared norm in every row at the last forward pass (always ``True`` without an edit).
    A state beyond that makes every norm return NaN or zeros; and a NaN at a position the model
    attends to spreads to every later token, so the last pass tells whether any pass overflowed.

    Locally, ``stop`` goes to HF ``stop_strings`` so the batch ends once every row has stopped;
    a remote request leaves it out (the server would need this tokenizer) and runs to
    ``max_new_tokens``; ``trim_row`` then cuts both the same way. ``kwargs``: the trace keywords
    of ``remote`` (``BatchRunner.run`` prepares them).
    """
    pad = model.tokenizer.pad_token_id
    edit = steering.tracer_kwargs()
    layout = steering.layout
    # the probe reads the stream entering the final norm, or (forward order) its output when
    # the edit itself is there ("add" at layer L)
    after_norm = not steering.mode.projects and steering.layer == model_info(model).n_layers
    # Bound before the block and assigned a saved value inside it: on NDIF the body runs on
    # the server and only saved values come back, pushed into these names.
    tokens: torch.Tensor | None = None
    finite: torch.Tensor | None = None
    gen_kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "pad_token_id": pad,
    }
    if stop and remote.local:
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
    return tokens.detach().to("cpu"), finite is None or bool(finite)


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


def _check_reach(plans: Sequence[SteeringPlan], token_ids: list[list[int]]) -> None:
    """Explicit positions must lie inside the shortest prompt."""
    shortest = min(len(t) for t in token_ids)
    for steering in plans:
        where = steering.positions
        if not isinstance(where, str) and min(where) < -shortest:
            raise SteeringError(
                f"position {min(where)} reaches before the start of the shortest prompt "
                f"({shortest} tokens); use indices >= {-shortest}"
            )


class NnsightEngine:
    """The plain nnsight generation loop: one ``model.generate`` trace per batch and plan.

    Implements ``lirefs.steer.Engine`` (outputs: ``GenerationOutput``). ``remote`` is decided
    once here from the model and the argument (``Remote.of``).

    Args:
        model: an nnsight model from ``lirefs.load_model`` / ``lirefs.wrap``.
        remote: ``None`` (the model's own setting), ``False``, ``True``, ``"local"`` or a
            ``Remote``.
        batch_size: prompts per generate call (left-padded, sorted by length).
        progress: progress bar (default: when stderr is a terminal).
    """

    def __init__(
        self,
        model: Any,
        *,
        remote: object = None,
        batch_size: int = GENERATE_BATCH_SIZE,
        progress: bool | None = None,
    ) -> None:
        self.model = model
        self.remote = Remote.of(model, remote)
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise DataError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.progress = progress

    def run(
        self,
        prompts: Prompts,
        plan: SteeringPlan,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] | None = None,
    ) -> GenerationOutput:
        """Greedy generations of ``prompts`` (texts or token-id lists) under ``plan``."""
        return self.run_many(prompts, [plan], max_new_tokens=max_new_tokens, stop=stop)[0]

    def _prompts(
        self, prompts: Prompts, token_ids: list[list[int]] | None
    ) -> tuple[list[str], list[list[int]]]:
        """``(texts, token ids)`` of texts or of token-id lists (whose texts are decoded);
        ``token_ids``, when given, are the ids of text prompts, which are then not tokenized."""
        rows = prompts if isinstance(prompts, Sequence) and not isinstance(prompts, str) else []
        if rows and isinstance(rows[0], Sequence) and not isinstance(rows[0], str):
            ids = [[int(t) for t in row] for row in cast("Sequence[Sequence[int]]", rows)]
            if not all(ids):
                raise DataError("token-id prompts must be non-empty lists of ids")
            return self.model.tokenizer.batch_decode(ids), ids
        texts = check_prompts(cast("Sequence[str]", prompts))
        if token_ids is None:
            return texts, tokenize(self.model, texts)
        if len(token_ids) != len(texts):
            raise DataError(
                f"token_ids has {len(token_ids)} rows for {len(texts)} prompts; give one per prompt"
            )
        return texts, token_ids

    def run_many(
        self,
        prompts: Prompts,
        plans: Sequence[SteeringPlan],
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] | None = None,
        token_ids: list[list[int]] | None = None,
    ) -> list[GenerationOutput]:
        """One output per plan, the prompts tokenized and batched once (``sweep``'s loop).

        ``token_ids``: the ids of text ``prompts`` (``batching.tokenize``) when the caller has
        them already (``generate`` and ``sweep`` tokenize once for the context check).
        """
        model = self.model
        texts, token_ids = self._prompts(prompts, token_ids)
        budget = check_budget(max_new_tokens)
        stops = check_stop(stop)
        _check_reach(plans, token_ids)
        n = len(texts)
        rows: list[list[tuple[list[int], bool]]] = [[([], False)] * n for _ in plans]
        eos = eos_ids(model)
        total = n * len(plans)
        with batch_runner(model, self.remote, "generating", total, self.progress) as runner:
            for batch in prompt_batches(model, texts, self.batch_size, token_ids=token_ids):
                inputs = runner.inputs(batch)
                t = inputs["input_ids"].shape[1]
                b = len(batch.index)
                for k, steering in enumerate(plans):
                    out, finite = runner.run(
                        functools.partial(
                            _generate_batch, model, inputs, steering, budget, stops, self.remote
                        ),
                        b,
                        f"a generate batch of {b} prompts",
                    )
                    if not finite:
                        raise _non_finite_error(steering)
                    if out.dim() != 2 or out.shape[0] != b:
                        raise SteeringError(
                            f"generate returned tokens of shape {tuple(out.shape)} for a batch "
                            f"of {b} prompts"
                        )
                    for r, i in enumerate(batch.index):
                        rows[k][i] = trim_row(out[r, t:], eos, stops, model.tokenizer)
        return [
            self._output(texts, row, steering, budget, stops)
            for row, steering in zip(rows, plans, strict=True)
        ]

    def _output(
        self,
        texts: list[str],
        rows: list[tuple[list[int], bool]],
        steering: SteeringPlan,
        budget: int,
        stops: list[str],
    ) -> GenerationOutput:
        ids = [r[0] for r in rows]
        settings = {
            **steering.settings(),
            "max_new_tokens": budget,
            "stop": stops,
            "model": model_info(self.model).name,
        }
        return GenerationOutput(
            prompts=list(texts),
            texts=self.model.tokenizer.batch_decode(ids, skip_special_tokens=True),
            token_ids=ids,
            stopped=[r[1] for r in rows],
            settings=settings,
        )


def _plans(
    model: Any,
    alphas: Sequence[float] | Sequence[SteeringPlan],
    steering: dict[str, Any],
) -> list[SteeringPlan]:
    """The distinct plans of a sweep: given plans, or one per distinct alpha of the keywords."""
    if isinstance(alphas, (str, bytes)) or not isinstance(alphas, Sequence):
        raise SteeringError(f"alphas must be a list of numbers, got {alphas!r}")
    if not alphas:
        raise SteeringError("alphas is empty: pass at least one alpha (0.0 is plain generation)")
    if all(isinstance(a, SteeringPlan) for a in alphas):
        return list({cast(SteeringPlan, p).alpha: cast(SteeringPlan, p) for p in alphas}.values())
    values = list(dict.fromkeys(check_alpha(a) for a in alphas))
    return [plan_of(model, alpha=a, **steering) for a in values]


def sweep(
    model: Any,
    prompts: Sequence[str],
    alphas: Sequence[float] | Sequence[SteeringPlan],
    *,
    direction: Direction | torch.Tensor | None = None,
    layer: int | None = None,
    mode: str | Mode = "project",
    positions: Positions = "all",
    blocks: Sequence[int] | None = None,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    remote: object = None,
    batch_size: int = GENERATE_BATCH_SIZE,
    progress: bool | None = None,
    layers: Sequence[int] | None = None,
) -> dict[float, GenerationOutput]:
    """``generate`` for several alphas, tokenizing and batching the prompts once.

    Takes ``generate``'s arguments (``layers=``: deprecated old name of ``blocks=``);
    ``alphas`` is a list of numbers (one plan each from the steering keywords) or a list of
    ``SteeringPlan`` (the steering keywords are then not used).

    Returns:
        ``{alpha: GenerationOutput}`` in the order of ``alphas`` (repeats collapse).
    """
    blocks = renamed_blocks(blocks, layers, "lirefs.sweep")
    engine = NnsightEngine(model, remote=remote, batch_size=batch_size, progress=progress)
    prompts = check_prompts(prompts)
    budget = check_budget(max_new_tokens)
    stops = check_stop(stop)
    check_not_meta(model, not engine.remote.local)
    token_ids = tokenize(model, prompts)
    warn_beyond_context(model, token_ids)
    steering = {
        "direction": direction,
        "layer": layer,
        "mode": mode,
        "positions": positions,
        "blocks": blocks,
    }
    plans = _plans(model, alphas, steering)
    return _run_plans(engine, (prompts, token_ids), plans, budget, stops)


def _run_plans(
    engine: NnsightEngine,
    prompts: tuple[list[str], list[list[int]]],
    plans: list[SteeringPlan],
    budget: int,
    stops: list[str],
    stacklevel: int = 4,
) -> dict[float, GenerationOutput]:
    """``{plan.alpha: output}`` of ``engine`` for ``(texts, their token ids)``, warning once
    about a stop string never met."""
    texts, token_ids = prompts
    outs = engine.run_many(texts, plans, max_new_tokens=budget, stop=stops, token_ids=token_ids)
    result = {p.alpha: out for p, out in zip(plans, outs, strict=True)}
    warn_unmatched_stops(
        [t for o in result.values() for t in o.texts],
        [len(ids) for o in result.values() for ids in o.token_ids],
        stops,
        budget,
        stacklevel=stacklevel,
    )
    return result


def generate(
    model: Any,
    prompts: Sequence[str],
    *,
    plan: SteeringPlan | None = None,
    direction: Direction | torch.Tensor | None = None,
    layer: int | None = None,
    alpha: float | None = None,
    mode: str | Mode = "project",
    positions: Positions = "all",
    blocks: Sequence[int] | None = None,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    remote: object = None,
    batch_size: int = GENERATE_BATCH_SIZE,
    progress: bool | None = None,
    layers: Sequence[int] | None = None,
) -> GenerationOutput:
    """Greedy generation, optionally steered along a direction.

    Args:
        model: an nnsight model from ``lirefs.load_model`` / ``lirefs.wrap`` (or a ``Steered.model``).
        prompts: texts exactly as they enter the model (``"Q: ...\\nA: "`` for the paper's format).
        plan: the steering, as one ``SteeringPlan`` (``lirefs.steer.plan(...)``;
            ``SteeringPlan.none(model)`` for none). Give either ``plan`` or the keywords below,
            which build one.
        direction: a ``Direction`` (checked against the model) or a ``[d_model]`` tensor.
        layer: residual index ``0..L`` whose direction is used (``"add"``: also where it is added);
            default: the layer the direction recorded as chosen on held-out data.
        alpha: scale (see ``lirefs.steer`` for each mode); ``None``: 0, no edit. ``"ablate"``
            takes none. A list of alphas still runs ``sweep`` (deprecated: call ``sweep``).
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
        first EOS and after the token that completes the first stop string).

    Raises:
        SteeringError: unknown mode or positions, an alpha the mode does not accept, no
            direction where one is needed, ``plan`` together with steering keywords,
            ``max_new_tokens < 1``, a steered run whose states went NaN/inf (the message names
            the alpha).
        LayerError: ``layer`` outside ``0..L`` or missing, bad ``blocks``.
        DirectionError / MetadataMismatchError: the direction belongs to another model or width.
        DataError: no prompts, or a prompt that is not a non-empty string.

    Warns:
        ReadMismatchWarning: the direction was built from chat-template prompts and these are
            plain ``"Q: ...\\nA: "`` prompts, or the other way round.
        StopStringWarning: a ``stop`` string occurred in no output while some rows ran to
            ``max_new_tokens`` (the texts are kept whole).
    """
    blocks = renamed_blocks(blocks, layers, "lirefs.generate")
    keywords: dict[str, Any] = {
        "direction": direction,
        "layer": layer,
        "mode": mode,
        "positions": positions,
        "blocks": blocks,
    }
    if plan is not None:
        _check_plan_alone(plan, keywords, alpha)
    many = alpha is not None and not isinstance(alpha, (numbers.Real, torch.Tensor))
    if many and (isinstance(alpha, (str, bytes)) or not isinstance(alpha, Sequence)):
        raise SteeringError(f"alpha must be a number or a list of numbers, got {alpha!r}")
    if isinstance(direction, Direction) and not isinstance(prompts, str):
        # once per call, whatever the number of alphas: the direction's prompt framing vs these
        warn_read_mismatch(
            direction.metadata.get("settings"),
            prompt_format=prompt_format_of(model, list(prompts)),
            stacklevel=3,
        )
    engine = NnsightEngine(model, remote=remote, batch_size=batch_size, progress=progress)
    prompts = check_prompts(prompts)
    budget = check_budget(max_new_tokens)
    stops = check_stop(stop)
    check_not_meta(model, not engine.remote.local)
    token_ids = tokenize(model, prompts)
    warn_beyond_context(model, token_ids)
    if many:
        deprecated("lirefs.generate(alpha=[...])", "call lirefs.sweep(model, prompts, alphas, ...)")
        plans = _plans(model, cast("Sequence[float]", alpha), keywords)
        return cast(
            GenerationOutput, _run_plans(engine, (prompts, token_ids), plans, budget, stops)
        )
    if plan is None:
        plan = plan_of(model, alpha=alpha, **keywords)
    return _run_plans(engine, (prompts, token_ids), [plan], budget, stops)[plan.alpha]


def _check_plan_alone(steering: Any, keywords: dict[str, Any], alpha: Any) -> None:
    """``plan=`` is a ``SteeringPlan`` and no steering keyword is given with it."""
    if not isinstance(steering, SteeringPlan):
        raise SteeringError(
            f"plan must be a lirefs.steer.SteeringPlan (lirefs.steer.plan(...)), got "
            f"{type(steering).__name__}"
        )
    defaults = {"mode": "project", "positions": "all"}  # the others default to None
    given = [
        k
        for k, v in keywords.items()
        if v is not None and not (isinstance(v, str) and v == defaults.get(k))
    ]
    if alpha is not None:
        given.append("alpha")
    if given:
        raise SteeringError(
            f"generate got plan= and {', '.join(f'{k}=' for k in given)}: the plan already holds "
            "the steering; pass one or the other"
        )
