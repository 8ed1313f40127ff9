"""Plain-PyTorch reference for steered generation: forward hooks on the HF model, no nnsight.

Written independently of ``tracers`` and ``lirefs.steer`` (own module table, own position logic,
own unit vector) after the official code's hooks: a forward pre-hook on every decoder block
rewrites its input, forward hooks on the attention and MLP sub-modules rewrite their outputs, each
with ``x <- x + alpha (x·r̂) r̂`` where ``r̂ = r / (||r|| + 1e-8)`` in float64 cast to ``x``'s dtype.
Additive steering adds ``c r̂`` to one residual index. Generation is HF ``generate`` (greedy) on a
batch left-padded by the tokenizer itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

#: Written from each family's transformers source, independently of ``tracers.ARCHITECTURES``:
#: model_type -> (blocks, final norm, attention contribution, MLP contribution), dotted paths.
#: Bloom's attention and MLP modules return residual + contribution, so its contributions are
#: their output projections. OPT's MLP has no [batch, tokens, d] output (None: not editable).
MODULES: dict[str, tuple[str, str, str | None, str | None]] = {
    "bloom": ("transformer.h", "transformer.ln_f", "self_attention.dense", "mlp.dense_4h_to_h"),
    "cohere": ("model.layers", "model.norm", "self_attn", "mlp"),
    "cohere2": ("model.layers", "model.norm", "self_attn", "mlp"),
    "falcon": ("transformer.h", "transformer.ln_f", "self_attention", "mlp"),
    "gemma": ("model.layers", "model.norm", "self_attn", "mlp"),
    "gemma2": ("model.layers", "model.norm", "self_attn", "mlp"),
    "gemma3_text": ("model.layers", "model.norm", "self_attn", "mlp"),
    "gpt2": ("transformer.h", "transformer.ln_f", "attn", "mlp"),
    "gpt_neox": ("gpt_neox.layers", "gpt_neox.final_layer_norm", "attention", "mlp"),
    "gptj": ("transformer.h", "transformer.ln_f", "attn", "mlp"),
    "llama": ("model.layers", "model.norm", "self_attn", "mlp"),
    "mistral": ("model.layers", "model.norm", "self_attn", "mlp"),
    "mixtral": ("model.layers", "model.norm", "self_attn", "mlp"),
    "olmo": ("model.layers", "model.norm", "self_attn", "mlp"),
    "olmo2": ("model.layers", "model.norm", "self_attn", "mlp"),
    "olmo3": ("model.layers", "model.norm", "self_attn", "mlp"),
    "olmoe": ("model.layers", "model.norm", "self_attn", "mlp"),
    "opt": ("model.decoder.layers", "model.decoder.final_layer_norm", "self_attn", None),
    "phi": ("model.layers", "model.final_layernorm", "self_attn", "mlp"),
    "phi3": ("model.layers", "model.norm", "self_attn", "mlp"),
    "qwen2": ("model.layers", "model.norm", "self_attn", "mlp"),
    "qwen3": ("model.layers", "model.norm", "self_attn", "mlp"),
    "qwen3_moe": ("model.layers", "model.norm", "self_attn", "mlp"),
    "smollm3": ("model.layers", "model.norm", "self_attn", "mlp"),
}


def _path(root: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        root = getattr(root, name)
    return root


class _Steps:
    """Counts forward passes of the whole model: 0 is the prompt pass."""

    def __init__(self) -> None:
        self.step = -1

    def __call__(self, module: Any, args: Any) -> None:
        self.step += 1


def _wanted(tokens: int, positions: str | Sequence[int], step: int) -> list[int]:
    """Token indices of this pass to edit."""
    if positions == "all":
        return list(range(tokens))
    if positions == "prompt":
        return list(range(tokens)) if step == 0 else []
    if positions == "generated":
        return [] if step == 0 else list(range(tokens))
    assert not isinstance(positions, str)
    return sorted({p % tokens for p in positions}) if step == 0 else []


def install_hooks(
    hf: Any,
    *,
    vector: torch.Tensor | None,
    alpha: float,
    mode: str,
    layer: int | None = None,
    positions: str | Sequence[int] = "all",
    blocks: Sequence[int] | None = None,
) -> list[Any]:
    """Register the steering hooks on ``hf``; returns the handles (call ``.remove()`` on each).

    Forward passes of the whole model are counted from 0 (the prompt pass), which is what
    ``positions`` refers to.

    Args:
        hf: the HF causal LM (not the nnsight wrapper).
        vector: raw ``[d_model]`` direction ``r`` (normalised here), or ``None`` for no edit.
        alpha: projection scale (``mode="project"``) or added multiple (``mode="add"``).
        mode: ``"project"`` (block input + attention output + MLP output of each block in
            ``blocks``), ``"ablate"`` (the same with ``alpha = -1``) or ``"add"`` (residual index
            ``layer``).
    """
    blocks_path, norm_path, attn_name, mlp_name = MODULES[hf.config.model_type]
    layers = _path(hf, blocks_path)
    n = len(layers)
    steps = _Steps()
    handles = [hf.register_forward_pre_hook(steps)]
    r_hat = None
    if vector is not None:
        r = vector.to(torch.float64)
        r_hat = r / (r.norm() + 1e-8)

    def edit(x: torch.Tensor, scale: float, additive: bool) -> torch.Tensor:
        assert r_hat is not None
        u = r_hat.to(device=x.device, dtype=x.dtype)
        new = x + scale * u if additive else x + scale * (x @ u).unsqueeze(-1) * u
        out = x.clone()
        idx = _wanted(x.shape[1], positions, steps.step)
        out[:, idx, :] = new[:, idx, :]
        return out

    def pre_hook(scale: float, additive: bool) -> Any:
        def hook(module: Any, args: tuple, kwargs: dict) -> Any:
            if args:
                return (edit(args[0], scale, additive), *args[1:]), kwargs
            kwargs = dict(kwargs)
            kwargs["hidden_states"] = edit(kwargs["hidden_states"], scale, additive)
            return args, kwargs

        return hook

    def out_hook(scale: float, additive: bool) -> Any:
        def hook(module: Any, args: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (edit(output[0], scale, additive), *output[1:])
            return edit(output, scale, additive)

        return hook

    if r_hat is not None and mode in ("project", "ablate"):
        scale = -1.0 if mode == "ablate" else alpha
        for i in range(n) if blocks is None else blocks:
            block = layers[i]
            handles.append(
                block.register_forward_pre_hook(pre_hook(scale, False), with_kwargs=True)
            )
            handles.append(
                _path(block, str(attn_name)).register_forward_hook(out_hook(scale, False))
            )
            handles.append(
                _path(block, str(mlp_name)).register_forward_hook(out_hook(scale, False))
            )
    elif r_hat is not None and mode == "add":
        assert layer is not None
        if layer < n:
            handles.append(
                layers[layer].register_forward_pre_hook(pre_hook(alpha, True), with_kwargs=True)
            )
        else:
            handles.append(_path(hf, norm_path).register_forward_hook(out_hook(alpha, True)))
    elif r_hat is not None:
        for h in handles:
            h.remove()
        raise ValueError(mode)
    return handles


def reference_generate(
    hf: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    vector: torch.Tensor | None,
    alpha: float,
    mode: str,
    layer: int | None = None,
    positions: str | Sequence[int] = "all",
    blocks: Sequence[int] | None = None,
    max_new_tokens: int = 12,
) -> list[list[int]]:
    """Greedy generations with raw hooks; generated ids cut before the first EOS.

    Args:
        hf: the HF causal LM (not the nnsight wrapper).
        tokenizer: its tokenizer (left padding is set here).
        vector, alpha, mode, layer, positions, blocks: the edit (see ``install_hooks``).
        max_new_tokens: generation length.
    """
    handles = install_hooks(
        hf, vector=vector, alpha=alpha, mode=mode, layer=layer, positions=positions, blocks=blocks
    )
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    device = next(hf.parameters()).device
    try:
        with torch.inference_mode():
            out = hf.generate(
                input_ids=enc["input_ids"].to(device),
                attention_mask=enc["attention_mask"].to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
    finally:
        for h in handles:
            h.remove()
    eos = hf.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    result = []
    for row in out[:, enc["input_ids"].shape[1] :].tolist():
        cut = next((i for i, t in enumerate(row) if t in eos), len(row))
        result.append(row[:cut])
    return result


def reference_gold_logprobs(
    hf: Any,
    tokenizer: Any,
    prompts: list[str],
    gold_texts: list[str],
    *,
    vector: torch.Tensor | None = None,
    alpha: float = 0.0,
    mode: str = "project",
    layer: int | None = None,
    blocks: Sequence[int] | None = None,
) -> list[float]:
    """Teacher-forced ``sum_k log p(g_k | prompt, g_<k)``, one unpadded plain forward per item.

    The prompt is tokenized with special tokens, the gold text alone without them; the ids are
    concatenated and run through ``hf`` (with the raw steering hooks when ``vector`` is given).
    The logits at position ``len(prompt) - 1 + k`` score gold token ``k``.
    """
    out = []
    device = next(hf.parameters()).device
    for prompt, gold in zip(prompts, gold_texts, strict=True):
        p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        g = tokenizer(gold, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p + g], device=device)
        handles = install_hooks(
            hf, vector=vector, alpha=alpha, mode=mode, layer=layer, blocks=blocks
        )
        try:
            with torch.inference_mode():
                logits = hf(input_ids=ids).logits[0].to(torch.float64)
        finally:
            for h in handles:
                h.remove()
        logp = torch.log_softmax(logits, dim=-1)
        out.append(sum(float(logp[len(p) - 1 + k, t]) for k, t in enumerate(g)))
    return out


def reference_forward(
    hf: Any,
    inputs: dict[str, torch.Tensor],
    *,
    vector: torch.Tensor | None,
    alpha: float,
    mode: str,
    layer: int | None = None,
    positions: str | Sequence[int] = "all",
    blocks: Sequence[int] | None = None,
) -> Any:
    """The HF output (``.logits`` ``[b, t, vocab]``, ``.hidden_states``) of ONE forward pass.

    ``inputs`` holds ``input_ids``, ``attention_mask`` and ``position_ids`` (``[b, t]``); the pass
    is a prompt pass (step 0) for ``positions``.
    """
    handles = install_hooks(
        hf, vector=vector, alpha=alpha, mode=mode, layer=layer, positions=positions, blocks=blocks
    )
    try:
        with torch.inference_mode():
            return hf(**inputs, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()


def reference_logits(hf: Any, inputs: dict[str, torch.Tensor], **edit: Any) -> torch.Tensor:
    """Logits ``[b, t, vocab]`` of ``reference_forward``."""
    return reference_forward(hf, inputs, **edit).logits


def reference_damage(
    hf: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    vector: torch.Tensor,
    alpha: float,
    mode: str,
    layer: int | None = None,
    blocks: Sequence[int] | None = None,
) -> float:
    """Mean next-token ``KL(p_plain || p_steered)`` over every (prompt, position) pair.

    Each prompt is tokenized alone (special tokens included) and run unpadded twice through
    ``hf``: plain, then with the raw steering hooks (``alpha`` is the per-edit scale, as in
    ``install_hooks``). ``KL = sum_v p_v (log p_v - log q_v)`` from float64 ``log_softmax`` of the
    logits, summed over every position of every prompt and divided by the number of positions.
    """
    device = next(hf.parameters()).device
    total = 0.0
    count = 0
    for prompt in prompts:
        ids = torch.tensor([tokenizer(prompt, add_special_tokens=True)["input_ids"]], device=device)
        with torch.inference_mode():
            plain = torch.log_softmax(hf(input_ids=ids).logits[0].to(torch.float64), dim=-1)
        handles = install_hooks(
            hf, vector=vector, alpha=alpha, mode=mode, layer=layer, blocks=blocks
        )
        try:
            with torch.inference_mode():
                logits = hf(input_ids=ids).logits[0].to(torch.float64)
        finally:
            for h in handles:
                h.remove()
        steered = torch.log_softmax(logits, dim=-1)
        total += float((plain.exp() * (plain - steered)).sum())
        count += int(ids.shape[1])
    return total / count
