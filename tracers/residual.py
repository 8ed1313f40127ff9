"""Where each architecture keeps its residual stream: the only module that knows.

Layer index convention (used everywhere in lirefs and tracers):
``l == HF output_hidden_states[l]``. ``l = 0`` is the embedding output (the input to block 0),
``0 < l < L`` is the input to block ``l`` (the output of block ``l - 1``), and ``l = L`` is the output
of the final norm applied to the last block's output. A model with ``L`` blocks has ``L + 1`` residual
positions.

This module runs inside nnsight traces, locally and on the NDIF server: it imports only torch, math
and the standard library, and never calls ``.save()``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ARCHITECTURES",
    "LayerOutOfRangeError",
    "Layout",
    "ShapeError",
    "TracerError",
    "UnsupportedArchitectureError",
    "block",
    "blocks",
    "check_layer",
    "final_norm",
    "layout_of",
    "n_layers",
    "residual",
    "submodule",
]


class TracerError(Exception):
    """Base class of errors raised by tracer blocks."""


class UnsupportedArchitectureError(TracerError, ValueError):
    """The model's ``config.model_type`` has no known layout."""


class LayerOutOfRangeError(TracerError, IndexError):
    """A residual index outside ``0..L``."""


class ShapeError(TracerError, ValueError):
    """A tensor or index handed to a tracer block has the wrong shape (or repeats a layer)."""


class Layout:
    """Paths (dotted attribute names) of the modules that carry the residual stream.

    Immutable: the four paths are read-only properties, and two layouts with the same paths are
    equal and hash alike. A plain class rather than a dataclass or ``NamedTuple``: the methods
    those generate have no source file, so sending a ``Layout`` to NDIF by value would ship them as
    bytecode, which breaks on a server running another Python version. It also touches no dunder
    attribute (no ``object.__setattr__``, no ``__reduce__``): production NDIF guards such access in
    the code it runs. Pickling uses the default protocol (the slot values travel by value).

    Attributes:
        blocks: path from the model root to the list of decoder blocks, e.g. ``"model.layers"``.
        final_norm: path from the root to the norm applied after the last block, e.g. ``"model.norm"``.
        attn: path from a block to the module whose output is the attention's contribution to the
            residual stream (a ``[b, t, d]`` tensor, or a tuple whose first item is one), e.g.
            ``"self_attn"`` or ``"self_attention.dense"``; ``None`` if the block has no such module.
        mlp: the same for the MLP's contribution (a ``[b, t, d]`` tensor), e.g. ``"mlp"``; ``None``
            if the block has no such module (the paper's three-point edit then cannot run).
    """

    __slots__ = ("_attn", "_blocks", "_final_norm", "_mlp")

    def __init__(
        self,
        blocks: str,
        final_norm: str,
        attn: str | None = "self_attn",
        mlp: str | None = "mlp",
    ) -> None:
        for name, value, optional in (
            ("blocks", blocks, False),
            ("final_norm", final_norm, False),
            ("attn", attn, True),
            ("mlp", mlp, True),
        ):
            if optional and value is None:
                continue
            if not isinstance(value, str) or not value:
                what = "a non-empty module path or None" if optional else "a non-empty module path"
                raise TracerError(f"Layout.{name} must be {what}, got {value!r}")
        self._blocks = blocks
        self._final_norm = final_norm
        self._attn = attn
        self._mlp = mlp

    @property
    def blocks(self) -> str:
        """Path from the model root to the list of decoder blocks."""
        return self._blocks

    @property
    def final_norm(self) -> str:
        """Path from the model root to the final norm (its output is ``hidden_states[L]``)."""
        return self._final_norm

    @property
    def attn(self) -> str | None:
        """Path from a block to its attention sub-module, or ``None`` when it has none to edit."""
        return self._attn

    @property
    def mlp(self) -> str | None:
        """Path from a block to its MLP sub-module, or ``None`` when it has none to edit."""
        return self._mlp

    def key(self) -> tuple[str, str, str | None, str | None]:
        """``(blocks, final_norm, attn, mlp)``: what equality and the hash compare."""
        return (self._blocks, self._final_norm, self._attn, self._mlp)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return "Layout(blocks={!r}, final_norm={!r}, attn={!r}, mlp={!r})".format(*self.key())


_DECODER = Layout("model.layers", "model.norm")
_TRANSFORMER = Layout("transformer.h", "transformer.ln_f", attn="attn", mlp="mlp")

#: ``config.model_type`` -> layout. Extend by passing ``layout=Layout(...)`` to any block.
#: The final norm (whose output is ``hidden_states[L]``) is ``model.norm`` unless named here.
ARCHITECTURES: dict[str, Layout] = {
    "llama": _DECODER,
    "mistral": _DECODER,
    "mixtral": _DECODER,
    "qwen2": _DECODER,
    "qwen3": _DECODER,
    "qwen3_moe": _DECODER,
    "smollm3": _DECODER,
    "olmo": _DECODER,
    "olmo2": _DECODER,
    "olmo3": _DECODER,
    "olmoe": _DECODER,
    "gemma": _DECODER,
    "gemma2": _DECODER,
    "gemma3_text": _DECODER,
    "phi3": _DECODER,
    # parallel attention + MLP (both read the block input): see docs/steering.md
    "cohere": _DECODER,
    "cohere2": _DECODER,
    "phi": Layout("model.layers", "model.final_layernorm"),
    "gptj": _TRANSFORMER,
    "falcon": Layout("transformer.h", "transformer.ln_f", attn="self_attention", mlp="mlp"),
    "gpt2": _TRANSFORMER,
    "gpt_neox": Layout("gpt_neox.layers", "gpt_neox.final_layer_norm", attn="attention", mlp="mlp"),
    # Bloom's attention and MLP modules return residual + contribution; their output projections
    # return the contribution alone.
    "bloom": Layout(
        "transformer.h", "transformer.ln_f", attn="self_attention.dense", mlp="mlp.dense_4h_to_h"
    ),
    # OPT's MLP (fc1, fc2) runs on a flattened [batch * tokens, d_model] view: no MLP edit.
    "opt": Layout("model.decoder.layers", "model.decoder.final_layer_norm", mlp=None),
}

#: Model classes (``config.architectures``) that share a ``model_type`` with a known family but
#: keep the residual stream elsewhere; refused with the reason.
_REFUSED_CLASSES = {
    "Gemma3ForConditionalGeneration": (
        "is Gemma-3 with a vision tower (its text blocks are under model.language_model); load "
        "the text model with Gemma3ForCausalLM or pass layout=tracers.Layout(blocks="
        "'model.language_model.layers', final_norm='model.language_model.norm')"
    ),
}


def _variant_problem(model_type: str, config: Any) -> str | None:
    """Why this variant of a known family has no exact layout, or ``None``."""
    if model_type == "opt":
        if getattr(config, "do_layer_norm_before", True) is False:
            return (
                "applies its layer norms after attention and MLP (do_layer_norm_before=False, e.g. "
                "opt-350m), so no module output equals hidden_states[l]"
            )
        proj = getattr(config, "word_embed_proj_dim", None)
        width = getattr(config, "hidden_size", proj)
        if proj is not None and proj != width:
            return (
                f"projects between its embedding width {proj} and d_model {width}, so "
                "hidden_states[L] has another width than the block inputs"
            )
    return None


def _get(root: Any, path: str) -> Any:
    node = root
    for part in path.split("."):
        node = getattr(node, part)
    return node


def layout_of(model: Any, layout: Layout | None = None) -> Layout:
    """The layout of ``model`` (an nnsight model or envoy), or ``layout`` when one is given.

    Raises:
        UnsupportedArchitectureError: the architecture (``config.model_type``) is unknown, or is a
            variant of a known family without an exact layout; the message lists the known
            families and says how to pass ``Layout(blocks=..., final_norm=...)`` by hand.
    """
    if layout is not None:
        return layout
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    for name in getattr(config, "architectures", None) or []:
        if name in _REFUSED_CLASSES:
            raise UnsupportedArchitectureError(f"{name} {_REFUSED_CLASSES[name]}")
    if model_type in ARCHITECTURES:
        problem = _variant_problem(model_type, config)
        if problem is None:
            return ARCHITECTURES[model_type]
        raise UnsupportedArchitectureError(
            f"this {model_type!r} model {problem}; its residual stream cannot be read or edited "
            "exactly (pass layout=tracers.Layout(...) only if you know which modules carry it)"
        )
    known = ", ".join(sorted(ARCHITECTURES))
    raise UnsupportedArchitectureError(
        f"architecture {model_type!r} has no known residual-stream layout (known families: "
        f"{known}); pass layout=tracers.Layout(blocks='path.to.blocks', "
        "final_norm='path.to.norm', attn='attn_name', mlp='mlp_name') naming the model's own "
        "modules, where block l's input is hidden_states[l] and the final norm's output is "
        "hidden_states[L] (in lirefs: load_model(..., layout=...) or wrap(..., layout=...))"
    )


def blocks(model: Any, layout: Layout | None = None) -> Any:
    """The list-like envoy of decoder blocks (``len`` is ``L``)."""
    return _get(model, layout_of(model, layout).blocks)


def block(model: Any, index: int, layout: Layout | None = None) -> Any:
    """Decoder block ``index`` (0-based block number, not a residual index)."""
    return blocks(model, layout)[index]


def final_norm(model: Any, layout: Layout | None = None) -> Any:
    """The norm applied to the last block's output; its output is ``hidden_states[L]``."""
    return _get(model, layout_of(model, layout).final_norm)


def submodule(block_envoy: Any, kind: str, layout: Layout) -> Any:
    """A block's ``"attn"`` or ``"mlp"`` sub-module envoy (the layout's path may be dotted).

    Raises:
        TracerError: ``kind`` is neither ``"attn"`` nor ``"mlp"``.
        UnsupportedArchitectureError: the layout names no such sub-module (``None``), so its
            output cannot be edited; the message says which edits still work.
    """
    if kind not in ("attn", "mlp"):
        raise TracerError(f"sub-module kind must be 'attn' or 'mlp', got {kind!r}")
    path = layout.attn if kind == "attn" else layout.mlp
    if path is None:
        raise UnsupportedArchitectureError(
            f"this model's blocks have no {kind} sub-module with a [batch, tokens, d_model] "
            f"output ({layout!r}), so its {kind} output cannot be edited (paper_project, ablate); "
            "edit the residual stream instead: tracers.add or tracers.scale_projection "
            "(in lirefs: mode='add')"
        )
    return _get(block_envoy, path)


def n_layers(model: Any, layout: Layout | None = None) -> int:
    """``L``, the number of decoder blocks; residual indices run ``0..L``."""
    return len(blocks(model, layout))


def check_layer(layer: int, n: int) -> int:
    """Return ``layer`` as an int if ``0 <= layer <= n``, else raise ``LayerOutOfRangeError``.

    ``layer`` may be any whole number (an int, a whole float, a 0-d integer tensor); a bool, a
    fraction, a string or ``None`` is out of range too.
    """
    try:
        whole = not isinstance(layer, bool) and int(layer) == layer
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or not 0 <= int(layer) <= n:
        raise LayerOutOfRangeError(
            f"layer {layer!r} is out of range: residual indices run 0..{n} "
            f"(0 = embeddings, {n} = after the final norm)"
        )
    return int(layer)


def residual(model: Any, layer: int, layout: Layout | None = None) -> Any:
    """The residual stream ``hidden_states[layer]`` as a ``[batch, tokens, d_model]`` value.

    Inside a trace this reads (and, being a live value, lets you edit in place) the input of block
    ``layer`` for ``layer < L`` and the final norm's output for ``layer == L``. Reads must follow
    forward order within one invoke: call it with increasing ``layer``.
    """
    lay = layout_of(model, layout)
    n = n_layers(model, lay)
    layer = check_layer(layer, n)
    if layer == n:
        return final_norm(model, lay).output
    return block(model, layer, lay).input
