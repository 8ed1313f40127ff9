"""Models split over devices: edits land on each block's own device, results match one device.

Three splits of a tiny Llama:

* cpu + meta: blocks 0-1 on the CPU, block 2, the final norm and the LM head on the meta device
  behind accelerate's ``AlignDevicesHook`` (what ``device_map`` installs). A CPU tensor meeting a
  meta tensor raises, so a steering edit that does not move r̂ to its block's device fails here
  exactly as it would between two GPUs; the CPU blocks' values must equal an unsplit model's.
* cpu + disk: ``lirefs.load_model(folder, device_map=...)`` with two blocks offloaded to disk, so
  every block runs behind accelerate's dispatch hooks; collection and steered generation must equal
  the plain model's token for token.
* cpu + cuda (skipped without a GPU): the same through a real two-device map.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_models import PROMPTS

import lirefs

#: (mode, alpha, layer) for every steering mode; "add" edits a CPU residual and a meta one.
EDITS = [("project", 0.3, None), ("ablate", 0.0, None), ("add", 4.0, 1), ("add", 4.0, 3)]


def _direction(d_model: int) -> torch.Tensor:
    return torch.randn(d_model, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def _inputs(model: Any) -> dict[str, torch.Tensor]:
    tok = model.tokenizer
    tok.padding_side = "left"
    return dict(tok(PROMPTS[:3], return_tensors="pt", padding=True))


def _steered_trace(
    model: Any, r: torch.Tensor, mode: str, alpha: float, layer: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Block 0 and block 1 outputs and the logits of one steered forward pass."""
    inputs = _inputs(model)
    steer = lirefs.steered(model, r, layer=layer, alpha=alpha, mode=mode)
    with steer as m, torch.inference_mode(), m.trace(inputs):
        h0 = m.model.layers[0].output.save()
        h1 = m.model.layers[1].output.save()
        logits = m.lm_head.output.save()
    first = [h if isinstance(h, torch.Tensor) else h[0] for h in (h0, h1)]
    return first[0], first[1], logits


@pytest.fixture
def meta_split(make_tiny: Callable[[str], Any]) -> Iterator[tuple[Any, Any]]:
    """(unsplit tiny llama, a copy whose block 2, final norm and LM head run on ``meta``)."""
    from accelerate.hooks import AlignDevicesHook, add_hook_to_module

    plain = make_tiny("llama")
    hf = copy.deepcopy(plain._module)
    meta = torch.device("meta")
    for module in (hf.model.layers[2], hf.model.norm, hf.lm_head):
        module.to(meta)
        add_hook_to_module(module, AlignDevicesHook(execution_device=meta))
    split = lirefs.wrap(hf, copy.deepcopy(plain.tokenizer), name="tiny-llama-meta-split")
    yield plain, split


@pytest.mark.parametrize(("mode", "alpha", "layer"), EDITS)
def test_edits_follow_each_blocks_device(
    meta_split: tuple[Any, Any], mode: str, alpha: float, layer: int | None
) -> None:
    plain, split = meta_split
    r = _direction(64)
    s0, s1, s_logits = _steered_trace(split, r, mode, alpha, layer)
    p0, p1, p_logits = _steered_trace(plain, r, mode, alpha, layer)
    assert s0.device.type == s1.device.type == "cpu"
    assert s_logits.device.type == "meta" and s_logits.shape == p_logits.shape
    torch.testing.assert_close(s0, p0, rtol=0, atol=0)
    torch.testing.assert_close(s1, p1, rtol=0, atol=0)
    # the edit really acts on the CPU blocks (an add at the meta residual 3 leaves them alone)
    _, u1, _ = _steered_trace(plain, r, "project", 0.0, None)
    assert (not torch.equal(p1, u1)) == (layer != 3)


def test_collect_reads_cpu_blocks_of_a_split_model(meta_split: tuple[Any, Any]) -> None:
    plain, split = meta_split  # residuals 0 and 1 live on the CPU, 2 and 3 on meta
    want = lirefs.collect_activations(plain, PROMPTS, batch_size=2, layers=[0, 1])
    got = lirefs.collect_activations(split, PROMPTS, batch_size=2, layers=[0, 1])
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A saved tiny Llama folder (weights + tokenizer), loadable with a ``device_map``."""
    from tiny_models import tiny_config
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(tiny_config("llama")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _device_map(where: dict[int, str]) -> dict[str, str]:
    return {
        "model.embed_tokens": where[0],
        "model.rotary_emb": where[0],
        **{f"model.layers.{i}": where[i] for i in range(3)},
        "model.norm": where[2],
        "lm_head": where[2],
    }


def _generations(model: Any, r: torch.Tensor) -> dict[str, list[list[int]]]:
    out = {}
    for mode, alpha, layer in EDITS:
        gen = lirefs.generate(
            model, PROMPTS, direction=r, layer=layer, alpha=alpha, mode=mode, max_new_tokens=6
        )
        out[f"{mode}@{layer}"] = gen.token_ids
    return out


def test_disk_offload_device_map_matches_plain(tiny_folder: Path) -> None:
    plain = lirefs.load_model(str(tiny_folder), device="cpu")
    split = lirefs.load_model(
        str(tiny_folder), device_map=_device_map({0: "cpu", 1: "disk", 2: "disk"})
    )
    assert lirefs.model_info(split).dtype == "float32"  # no GPU in the map: CPU default dtype
    assert hasattr(split._module.model.layers[1], "_hf_hook")  # accelerate dispatched it
    torch.testing.assert_close(
        lirefs.collect_activations(split, PROMPTS, batch_size=2),
        lirefs.collect_activations(plain, PROMPTS, batch_size=2),
        rtol=0,
        atol=0,
    )
    r = _direction(64)
    got, want = _generations(split, r), _generations(plain, r)
    assert got == want
    assert got["project@None"] != lirefs.generate(plain, PROMPTS, max_new_tokens=6).token_ids


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_cpu_device_map_matches_cpu(tiny_folder: Path) -> None:
    plain = lirefs.load_model(str(tiny_folder), device="cpu")
    split = lirefs.load_model(
        str(tiny_folder),
        device_map=_device_map({0: "cuda:0", 1: "cpu", 2: "cuda:0"}),
        dtype="float32",
    )
    r = _direction(64)
    for mode, alpha, layer in EDITS:
        *_, got = _steered_trace(split, r, mode, alpha, layer)
        *_, want = _steered_trace(plain, r, mode, alpha, layer)
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)
    gens = _generations(split, r)
    assert all(len(ids) == len(PROMPTS) for ids in gens.values())
