"""Collecting residual states at every layer: one nnsight trace per batch.

Each batch is one ``model.trace`` that saves ``hidden_states[l][:, -1, :]`` for the requested layers
(``tracers.last_token``; or the token before a shared template suffix, or a mean over the last
``k`` real tokens with ``tracers.mean_last``: see ``lirefs.reading``) and then stops the forward pass: nothing after the last layer read is
computed (no LM head over the vocabulary). Prompts are tokenized once, sorted by length so batches
carry little padding, left-padded with mask-derived position ids, and returned in the caller's order.

With ``cache_dir`` the states are streamed to disk in chunks (safetensors, written atomically) with a
manifest; a rerun skips finished chunks, and a cache made with another model, prompt set or layer
set is refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

import tracers

from .batching import DEFAULT_TOKEN_BUDGET, Batch, input_device, prompt_batches, tokenize
from .checks import check_prompts, positive_int, residual_indices, translate_tracer_errors
from .errors import (
    ActivationError,
    CacheMismatchError,
    ContextLengthWarning,
    DataError,
    MetadataMismatchError,
)
from .inputs import check_not_meta
from .models import model_info, model_layout
from .ndif import trace_kwargs
from .reading import ReadSpec, check_read_positions, common_suffix, parse_read
from .store import atomic_path, check_metadata, hash_texts, lock, make_metadata, write_json
from .tracing import BatchRunner, Remote, batch_runner

__all__ = ["ActivationCache", "ContextLengthWarning", "collect_activations", "read_batch"]


#: Settings a cache must have been made with to be resumed: any other value gives other states
#: (dtype), another chunking of the prompts, or batches whose padding differs in the last bits.
#: ``read``/``read_suffix``: where each prompt's state is read (caches from before they existed
#: read the last token).
CACHE_SETTINGS = (
    "layers",
    "chunk_size",
    "n_prompts",
    "dtype",
    "batch_size",
    "token_budget",
    "read",
    "read_suffix",
)
#: What a cache manifest that lacks a setting was made with.
CACHE_DEFAULTS: dict[str, Any] = {"read": "last", "read_suffix": None}

MANIFEST = "manifest.json"

#: Prompts tokenized and length-sorted together when no ``cache_dir`` is given. Large enough that
#: sorting removes almost all padding, small enough that the tokenizer's output for one chunk stays
#: a few MB.
UNCACHED_CHUNK = 1024

#: Largest result (states in the model's dtype) one remote request returns when no batch size is
#: given: NDIF sends results up to its inline cap (8 MiB with stock Redis) on the websocket,
#: larger ones through object storage.
REMOTE_RESULT_BYTES = 8 * 2**20


def read_batch(
    model: Any,
    batch: Batch,
    layers: list[int],
    remote: bool | str,
    layout: tracers.Layout,
    mean_k: int = 0,
    index: int = -1,
) -> torch.Tensor:
    """One trace: ``[b, len(layers), d_model]`` float32 on CPU, rows in ``batch.index`` order.

    What ``collect_activations`` runs for each batch (its ``run_batch`` default).

    ``mean_k > 0``: the mean over each row's last ``mean_k`` real tokens; otherwise the state at
    token ``index`` (the same for every row of a left-padded batch).
    """
    device = input_device(model)
    inputs = {k: v.to(device) for k, v in batch.inputs.items()}
    mask = inputs["attention_mask"]
    # Bound before the block and assigned a saved value inside it: on NDIF the body runs on the
    # server and only saved values come back, pushed into these names (appending to a list made
    # out here would change the server's copy and leave this one empty).
    states: torch.Tensor | None = None
    with torch.inference_mode(), model.trace(inputs, **trace_kwargs(remote)) as tr:
        if mean_k:
            states = tracers.mean_last(model, layers, mean_k, mask, layout=layout).save()  # type: ignore[attr-defined]
        else:
            states = tracers.last_token(model, layers, index, layout=layout).save()  # type: ignore[attr-defined]
        tr.stop()
    if states is None:
        raise ActivationError("the trace returned no states")
    return states.detach().to("cpu", torch.float32)


class ActivationCache:
    """A folder of activation chunks plus ``manifest.json``: resumable collection on disk.

    Layout: ``manifest.json`` (metadata: model, data hash, layers, chunk size, finished chunks) and
    ``chunk-00000.safetensors`` ... each holding ``states`` ``[k, n_layers_read, d_model]`` float32
    for prompts ``k * chunk_size ...`` in the caller's order.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    def manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.is_file():
            return None
        try:
            meta = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CacheMismatchError(
                f"{self.manifest_path} is not valid JSON ({first}); delete the folder to start over"
            ) from None
        if (
            not isinstance(meta, dict)
            or not isinstance(meta.get("settings"), dict)
            or not isinstance(meta.get("chunks"), dict)
        ):
            raise CacheMismatchError(
                f"{self.manifest_path} is not an activation-cache manifest (no settings/chunks "
                "objects); delete the folder to start over"
            )
        return meta

    def open(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Start or resume: check an existing manifest against ``meta``, or write a fresh one."""
        old = self.manifest()
        if old is None:
            meta = {**meta, "chunks": {}}
            write_json(self.manifest_path, meta)
            return meta
        where = f"activation cache {self.folder}"
        try:
            check_metadata(
                old,
                what=where,
                kind="activations",
                model=meta["model"],
                data_hash=meta["data"]["hash"],
            )
        except MetadataMismatchError as exc:
            raise CacheMismatchError(str(exc)) from None
        for key in CACHE_SETTINGS:
            before = old["settings"].get(key, CACHE_DEFAULTS.get(key))
            if before != meta["settings"].get(key):
                raise CacheMismatchError(
                    f"{where} was made with {key}={before}, now {key}="
                    f"{meta['settings'].get(key)}; use another cache_dir or the same settings"
                )
        return old

    def chunk_path(self, i: int) -> Path:
        return self.folder / f"chunk-{i:05d}.safetensors"

    def write_chunk(self, manifest: dict[str, Any], i: int, states: torch.Tensor) -> None:
        from safetensors.torch import save_file

        with atomic_path(self.chunk_path(i)) as tmp:
            save_file({"states": states.contiguous()}, str(tmp))
        manifest["chunks"][str(i)] = self.chunk_path(i).name
        write_json(self.manifest_path, manifest)

    def read_chunk(self, i: int, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """Chunk ``i``'s ``states``; ``CacheMismatchError`` if it is missing, torn or misshapen.

        ``shape`` is what the chunk must hold (``[k, n_layers_read, d_model]``), when known.
        """
        from safetensors.torch import load_file

        path = self.chunk_path(i)
        fix = f"delete {self.folder} (or this chunk and its entry in {MANIFEST}) and rerun"
        if not path.is_file():
            raise CacheMismatchError(f"cache chunk {path} listed in {MANIFEST} is missing; {fix}")
        try:
            states = load_file(str(path))["states"]
        except Exception as exc:  # safetensors raises several types for a torn file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CacheMismatchError(f"cache chunk {path} is unreadable ({first}); {fix}") from None
        if states.dtype != torch.float32 or (shape is not None and tuple(states.shape) != shape):
            raise CacheMismatchError(
                f"cache chunk {path} holds {states.dtype} {tuple(states.shape)}, expected float32 "
                f"{shape}; {fix}"
            )
        if not torch.isfinite(states).all():
            raise CacheMismatchError(f"cache chunk {path} holds NaN or inf; {fix}")
        return states

    def iter_chunks(self) -> Iterator[torch.Tensor]:
        """Finished chunks in prompt order, one ``[k, n_layers_read, d_model]`` tensor at a time."""
        meta = self.manifest()
        if meta is None:
            raise CacheMismatchError(
                f"{self.folder} has no {MANIFEST}: it is not an activation cache"
            )
        for key in sorted(meta["chunks"], key=int):
            yield self.read_chunk(int(key))


def collect_activations(
    model: Any,
    prompts: Sequence[str],
    *,
    batch_size: int | None = None,
    remote: bool | str | None = None,
    cache_dir: str | Path | None = None,
    layers: Sequence[int] | None = None,
    chunk_size: int = 256,
    progress: bool | None = None,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    read: str = "last",
    question_suffix: Sequence[int] | None = None,
    label: str | None = None,
    run_batch: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """Residual states of every prompt at every layer, read at the last token by default.

    Args:
        model: an nnsight model from ``lirefs.load_model`` (or ``lirefs.wrap``).
        prompts: the texts exactly as they enter the model (use ``lirefs.data.format_prompt`` for the
            paper's ``"Q: ...\\nA: "`` format).
        batch_size: prompts per trace. ``None`` (default) sizes each batch to ``token_budget``
            padded tokens; remotely also to at most ``REMOTE_RESULT_BYTES`` of states per request.
        remote: ``False`` (local), ``True`` (NDIF) or ``"local"`` (nnsight's in-process remote path);
            ``None`` (default): the model's own setting (``True`` after ``load_model(...,
            remote=True)``).
        cache_dir: stream chunks here (resumable; refuses another model or prompt set).
        layers: residual indices to keep (default all ``0..L``).
        chunk_size: prompts per cache chunk (a kill loses at most one chunk of work).
        progress: show a progress bar (default: when stderr is a terminal).
        token_budget: padded tokens per batch when ``batch_size`` is ``None``.
        read: where each prompt's state is read. ``"last"`` (default, the paper): the last
            prompt token. ``"question_end"``: the token just before ``question_suffix``, by default
            the longest token suffix every prompt of ``prompts`` shares (a chat template's closing
            tokens, or ``"\nA: "``), so the state is that of the question's last token and not of
            template text every prompt ends with. ``"mean-last-K"`` (e.g. ``"mean-last-4"``): the
            mean over each prompt's last ``K`` real tokens (pads are never averaged).
        question_suffix: ``read="question_end"`` only: token ids every prompt ends with, to pin
            the suffix (e.g. the one found on another class of the same data set, so that both
            classes are read at the same place). Default: found on ``prompts``.
        label: what these prompts are, for the stage line and the progress bar (e.g. ``"train
            reasoning"`` shows ``collecting train reasoning``); default ``"activations"``.
        run_batch: what runs one batch's trace, called as ``run_batch(model, batch, layers,
            remote, layout, **read)`` and returning ``[b, len(layers), d_model]`` (default
            :func:`read_batch`); wrap it to count, time or interrupt batches.

    Returns:
        ``[n_prompts, len(layers), d_model]`` float32 on CPU; with the default ``layers`` this is
        ``[n_prompts, L + 1, d_model]`` and ``out[:, l]`` equals HF ``output_hidden_states[l]`` at
        each prompt's read position (its last token by default).

    Raises:
        DataError: no prompts, a prompt that is not a non-empty string, an unknown ``read``, or a
            read position outside a prompt (``K`` longer than a prompt, a prompt whose question
            part before the suffix is empty or that does not end with ``question_suffix``).
        LayerError: a layer outside ``0..L``.
        ActivationError: the model produced NaN or inf.
        CacheMismatchError: ``cache_dir`` holds states of another model, prompt set or layer set.
    """
    prompts = check_prompts(prompts)
    info = model_info(model)
    where_to = Remote.of(model, remote)
    check_not_meta(model, not where_to.local)
    if batch_size is not None:
        batch_size = positive_int(batch_size, "batch_size", " (or None for a token budget)")
    token_budget = positive_int(token_budget, "token_budget")
    chunk_size = positive_int(chunk_size, "chunk_size", " (prompts per cache chunk)")
    layout = model_layout(model)
    wanted = residual_indices(layers, info.n_layers)
    n = len(prompts)
    spec = parse_read(read)
    suffix = _read_suffix(model, prompts, spec, question_suffix)
    where = _read_at(spec, suffix)

    with contextlib.ExitStack() as held:
        if cache_dir is not None:
            # One run per cache folder at a time: a second would redo the same chunks.
            held.enter_context(_locked_folder(Path(cache_dir)))
        cache = ActivationCache(cache_dir) if cache_dir is not None else None
        manifest: dict[str, Any] | None = None
        if cache is not None:
            settings = {
                "layers": wanted,
                "chunk_size": chunk_size,
                "n_prompts": n,
                "read": str(spec),
                "read_suffix": suffix if spec.kind == "question_end" else None,
                "dtype": info.dtype,
                "batch_size": batch_size,
                "token_budget": token_budget,
            }
            data = {"hash": hash_texts(prompts), "n_prompts": n}
            meta = make_metadata("activations", model=info.to_dict(), data=data, settings=settings)
            manifest = cache.open(meta)
        # Prompts are tokenized, sorted and batched one chunk at a time, so the token ids held at once
        # do not grow with the number of prompts.
        step = chunk_size if cache is not None else UNCACHED_CHUNK
        max_rows = None if where_to.local else _remote_rows(info.dtype, len(wanted), info.d_model)
        n_chunks = math.ceil(n / step)
        out = torch.empty((n, len(wanted), info.d_model), dtype=torch.float32)

        run = read_batch if run_batch is None else run_batch

        def trace(batch: Batch, inputs: dict[str, torch.Tensor], kw: dict[str, Any]) -> Any:
            # it places its own inputs
            return run(model, batch, wanted, where_to.setting, layout, **where)

        batching = {"batch_size": batch_size, "token_budget": token_budget, "max_rows": max_rows}
        what = f"collecting {label or 'activations'}"
        sizing = f"batches of {batch_size}" if batch_size else f"{token_budget} tokens a batch"
        start = f"{what}: {n} prompts, {sizing}" + (f", cache {cache_dir}" if cache_dir else "")
        with batch_runner(model, where_to, what, n, progress, start) as runner:
            for c in range(n_chunks):
                lo, hi = c * step, min(n, (c + 1) * step)
                if cache is not None and manifest is not None and str(c) in manifest["chunks"]:
                    out[lo:hi] = cache.read_chunk(c, (hi - lo, len(wanted), info.d_model))
                    runner.bar.advance(hi - lo)
                    continue
                _run_chunk(runner, trace, prompts, lo, hi, out, batching)
                if cache is not None and manifest is not None:
                    cache.write_chunk(manifest, c, out[lo:hi])
        return out


def _read_at(spec: ReadSpec, suffix: list[int]) -> dict[str, int]:
    """``read_batch``'s keywords for a read: none for the default read (called exactly as before
    the other reads existed), ``mean_k`` for a mean, ``index`` before a suffix."""
    if spec.kind == "mean":
        return {"mean_k": spec.k}
    if suffix:
        return {"index": -1 - len(suffix)}
    return {}


def _run_chunk(
    runner: BatchRunner,
    trace: Any,
    prompts: list[str],
    lo: int,
    hi: int,
    out: torch.Tensor,
    batching: dict[str, Any],
) -> None:
    """Collect prompts ``lo..hi-1`` into ``out[lo:hi]``: tokenized and batched as one chunk."""
    model = runner.model
    chunk_ids = tokenize(model, prompts[lo:hi])
    _warn_beyond_context(model, chunk_ids, lo)
    batches = prompt_batches(
        model,
        prompts[lo:hi],
        batching["batch_size"],
        token_ids=chunk_ids,
        token_budget=batching["token_budget"],
        max_rows=batching["max_rows"],
    )
    with translate_tracer_errors():
        for batch, states in runner.each(batches, trace):
            _check_finite(states, [lo + i for i in batch.index])
            out[[lo + i for i in batch.index]] = states


def _remote_rows(dtype_name: str, n_layers_read: int, d_model: int) -> int:
    """Most prompts per remote request whose states (in the model's dtype: bfloat16 for the big
    models) fit in ``REMOTE_RESULT_BYTES``."""
    dtype = getattr(torch, dtype_name, None)
    size = dtype.itemsize if isinstance(dtype, torch.dtype) else 4
    return max(1, REMOTE_RESULT_BYTES // (n_layers_read * d_model * size))


def _check_finite(states: torch.Tensor, rows: list[int]) -> None:
    """``ActivationError`` naming the prompts (``rows``: their indices) whose states are NaN/inf."""
    if not torch.isfinite(states).all():
        bad = [rows[r] for r in range(len(rows)) if not torch.isfinite(states[r]).all()]
        raise ActivationError(
            f"the model produced NaN/inf states for prompts {bad[:5]}; try "
            "dtype='float32' (half precision can overflow) or check the model's weights"
        )


def _read_suffix(
    model: Any, prompts: list[str], spec: ReadSpec, given: Sequence[int] | None
) -> list[int]:
    """The shared suffix ``question_end`` reads before (``[]`` otherwise), every position checked.

    Prompts are tokenized one ``UNCACHED_CHUNK`` at a time (twice for ``question_end`` without a
    given suffix: once to find it, once to check each prompt against it), before any batch runs,
    so a bad prompt never leaves a half-written cache.
    """
    if given is not None and spec.kind != "question_end":
        raise DataError(
            f"question_suffix is for read='question_end', got read='{spec}'; drop question_suffix"
        )
    if spec.kind == "last":
        return []
    chunks = range(0, len(prompts), UNCACHED_CHUNK)
    suffix: list[int] = []
    if spec.kind == "question_end":
        if given is not None:
            if isinstance(given, str) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in given
            ):
                raise DataError(
                    f"question_suffix must be a list of token ids, got {given!r}; e.g. "
                    "model.tokenizer(suffix_text, add_special_tokens=False)['input_ids']"
                )
            suffix = list(given)
        else:
            found: list[int] | None = None
            for lo in chunks:
                found = common_suffix(tokenize(model, prompts[lo : lo + UNCACHED_CHUNK]), found)
            suffix = found or []
    special = list(getattr(model.tokenizer, "all_special_ids", None) or [])
    for lo in chunks:
        ids = tokenize(model, prompts[lo : lo + UNCACHED_CHUNK])
        check_read_positions(spec, ids, suffix=suffix, special_ids=special, offset=lo)
    return suffix


def _warn_beyond_context(model: Any, ids: list[list[int]], offset: int) -> None:
    """Warn once per chunk about prompts longer than the model's context window."""
    config = getattr(model, "config", None)
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not isinstance(limit, int) or limit <= 0:
        return
    long = [offset + i for i, x in enumerate(ids) if len(x) > limit]
    if long:
        longest = max(len(ids[i - offset]) for i in long)
        warnings.warn(
            f"{len(long)} prompts (e.g. {long[:5]}) are longer than the model's context of {limit} "
            f"tokens (longest {longest}); their states are beyond what it was trained on: shorten "
            "them",
            ContextLengthWarning,
            stacklevel=4,
        )


def _locked_folder(folder: Path) -> contextlib.AbstractContextManager[Path]:
    """The cache folder, created, under an exclusive lock (``LockError`` if another run has it)."""
    if folder.exists() and not folder.is_dir():
        raise CacheMismatchError(f"cache_dir {str(folder)!r} is a file; pass a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return lock(
        folder, what=f"activation cache {folder}", fix="wait for it, or pass another cache_dir"
    )
