"""collect_activations equals HF output_hidden_states, whatever the batching or padding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_models import FAMILIES

import lirefs
from lirefs.errors import ActivationError, CacheMismatchError, DataError, LayerError


def hf_last_token_states(model: Any, prompts: list[str]) -> torch.Tensor:
    """Reference: plain HF forward, one prompt at a time (no padding), ``[n, L + 1, d]``."""
    hf = model._module
    rows = []
    for p in prompts:
        enc = model.tokenizer(p, return_tensors="pt")
        with torch.no_grad():
            hs = hf(**enc, output_hidden_states=True).hidden_states
        rows.append(torch.stack([h[0, -1] for h in hs]))
    return torch.stack(rows).float()


def assert_close_to_reference(acts: torch.Tensor, ref: torch.Tensor) -> None:
    """DESIGN.md anchor: max |diff| <= 1e-5 x the layer's largest activation."""
    assert acts.shape == ref.shape
    scale = ref.abs().amax(dim=(0, 2), keepdim=True).clamp_min(1.0)
    worst = ((acts - ref).abs() / scale).max().item()
    assert worst <= 1e-5, f"relative difference {worst:.2e}"


@pytest.mark.parametrize("family", FAMILIES)
def test_matches_hf_hidden_states(make_tiny: Any, prompts: list[str], family: str) -> None:
    model = make_tiny(family)
    acts = lirefs.collect_activations(model, prompts, batch_size=3)
    L = lirefs.model_info(model).n_layers
    assert acts.shape == (len(prompts), L + 1, 64)
    assert acts.dtype == torch.float32 and acts.device.type == "cpu"
    assert not acts.requires_grad
    assert_close_to_reference(acts, hf_last_token_states(model, prompts))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_batch_size_does_not_change_results(
    make_tiny: Any, prompts: list[str], family: str
) -> None:
    model = make_tiny(family)
    one = lirefs.collect_activations(model, prompts, batch_size=1)
    many = lirefs.collect_activations(model, prompts, batch_size=len(prompts))
    assert_close_to_reference(many, one)


def test_results_come_back_in_the_callers_order(make_tiny: Any, prompts: list[str]) -> None:
    model = make_tiny("llama")
    forward = lirefs.collect_activations(model, prompts, batch_size=2)
    backward = lirefs.collect_activations(model, prompts[::-1], batch_size=2)
    assert_close_to_reference(backward.flip(0), forward)


def test_left_padding_equals_right_padding_read_at_last_real_token(
    make_tiny: Any, prompts: list[str]
) -> None:
    """A right-padded trace read at mask.sum - 1 gives the states collect reads left-padded."""
    import tracers

    model = make_tiny("gpt2")  # absolute positions: padding errors would show
    tok = model.tokenizer
    tok.padding_side = "right"
    try:
        enc = tok(prompts, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = "left"
    last = enc["attention_mask"].sum(1) - 1
    L = lirefs.model_info(model).n_layers
    with torch.no_grad(), model.trace(dict(enc)) as tr:
        right = tracers.last_token(model, range(L + 1), index=last).save()
        tr.stop()
    left = lirefs.collect_activations(model, prompts, batch_size=len(prompts))
    assert_close_to_reference(left, right.float())


def test_subset_of_layers(make_tiny: Any, prompts: list[str]) -> None:
    model = make_tiny("llama")
    full = lirefs.collect_activations(model, prompts)
    some = lirefs.collect_activations(model, prompts, layers=[3, 1])
    assert torch.equal(some[:, 0], full[:, 3]) and torch.equal(some[:, 1], full[:, 1])


def test_remote_local_path_gives_the_same_numbers(make_tiny: Any, prompts: list[str]) -> None:
    model = make_tiny("llama")
    local = lirefs.collect_activations(model, prompts, batch_size=2)
    via_remote = lirefs.collect_activations(model, prompts, batch_size=2, remote="local")
    assert torch.equal(local, via_remote)


@pytest.mark.slow
def test_smollm2_matches_hf_hidden_states(smollm2: Any, prompts: list[str]) -> None:
    acts = lirefs.collect_activations(smollm2, prompts, batch_size=4)
    assert acts.shape == (len(prompts), 31, 576)
    assert_close_to_reference(acts, hf_last_token_states(smollm2, prompts))


def test_bad_input_is_refused(make_tiny: Any, prompts: list[str]) -> None:
    model = make_tiny("llama")
    with pytest.raises(DataError, match="no prompts"):
        lirefs.collect_activations(model, [])
    with pytest.raises(DataError, match="single string"):
        lirefs.collect_activations(model, "Q: hi\nA: ")
    with pytest.raises(DataError, match="non-empty"):
        lirefs.collect_activations(model, ["ok", ""])
    with pytest.raises(LayerError, match=r"0\.\.3"):
        lirefs.collect_activations(model, prompts, layers=[4])


def test_nan_states_are_refused(make_tiny: Any, prompts: list[str]) -> None:
    from tiny_models import tiny_config
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_config(tiny_config("llama")).eval()
    with torch.no_grad():
        hf.model.layers[1].mlp.down_proj.weight.fill_(float("nan"))
    model = lirefs.wrap(hf, make_tiny("llama").tokenizer, name="broken")
    with pytest.raises(ActivationError, match="NaN"):
        lirefs.collect_activations(model, prompts)


class _Killed(Exception):
    pass


def test_cache_resumes_after_a_kill_with_identical_results(
    make_tiny: Any, prompts: list[str], tmp_path: Any
) -> None:
    from lirefs.collect import read_batch

    model = make_tiny("llama")
    many = prompts * 3  # 15 prompts, chunks of 4
    full = lirefs.collect_activations(
        model, many, batch_size=2, cache_dir=tmp_path / "uninterrupted", chunk_size=4
    )
    cache = tmp_path / "killed"

    calls = {"n": 0}

    def dying(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] > 4:  # two chunks done (2 batches each), then "killed"
            raise _Killed
        return read_batch(*args, **kwargs)

    with pytest.raises(_Killed):
        lirefs.collect_activations(
            model, many, batch_size=2, cache_dir=cache, chunk_size=4, run_batch=dying
        )
    done = sorted(p.name for p in cache.glob("chunk-*.safetensors"))
    assert done == ["chunk-00000.safetensors", "chunk-00001.safetensors"]
    assert not list(cache.glob(".*tmp")), "no partial files"

    counted = {"n": 0}

    def counting(*args: Any, **kwargs: Any) -> torch.Tensor:
        counted["n"] += 1
        return read_batch(*args, **kwargs)

    resumed = lirefs.collect_activations(
        model, many, batch_size=2, cache_dir=cache, chunk_size=4, run_batch=counting
    )
    assert counted["n"] == 4  # only chunks 2 and 3 ran: 2 + 2 batches of <= 2 prompts
    assert torch.equal(resumed, full)
    streamed = torch.cat(list(lirefs.ActivationCache(cache).iter_chunks()))
    assert torch.equal(streamed, full)


def test_cache_refuses_another_model_or_prompt_set(
    make_tiny: Any, prompts: list[str], tmp_path: Any
) -> None:
    lirefs.collect_activations(make_tiny("llama"), prompts, cache_dir=tmp_path)
    with pytest.raises(CacheMismatchError, match="hash"):
        lirefs.collect_activations(make_tiny("llama"), prompts[:3], cache_dir=tmp_path)
    with pytest.raises(CacheMismatchError, match="model"):
        lirefs.collect_activations(make_tiny("qwen2"), prompts, cache_dir=tmp_path)


def test_token_budget_batches_fit_the_budget_and_give_the_same_states(
    make_tiny: Any, prompts: list[str]
) -> None:
    from lirefs.batching import prompt_batches

    model = make_tiny("llama")
    many = prompts * 4
    batches = list(prompt_batches(model, many, None, token_budget=64))
    assert sorted(i for b in batches for i in b.index) == list(range(len(many)))
    for b in batches:
        rows, width = b.inputs["input_ids"].shape
        assert rows == 1 or rows * width <= 64
    assert len({len(b.index) for b in batches}) > 1, "short prompts should share larger batches"
    fixed = lirefs.collect_activations(model, many, batch_size=4)
    budget = lirefs.collect_activations(model, many, batch_size=None, token_budget=64)
    assert_close_to_reference(budget, fixed)
    capped = list(prompt_batches(model, many, None, token_budget=10_000, max_rows=3))
    assert max(len(b.index) for b in capped) == 3
    assert sorted(i for b in capped for i in b.index) == list(range(len(many)))


def test_default_batches_fill_the_token_budget_and_remote_ones_are_capped(
    make_tiny: Any, prompts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lirefs import collect

    model = make_tiny("llama")
    many = prompts * 4  # 20 short prompts: one default batch of up to 1,024 padded tokens
    sizes: list[tuple[int, bool | str]] = []

    def spy(model: Any, batch: Any, layers: Any, remote: Any, layout: Any) -> Any:
        sizes.append((len(batch.index), remote))
        return collect.read_batch(model, batch, layers, remote, layout)

    local = lirefs.collect_activations(model, many, run_batch=spy)
    assert [s for s, _ in sizes] == [len(many)]
    # remotely, no more prompts per request than keep the result under REMOTE_RESULT_BYTES
    row = 4 * 4 * 64  # (L + 1) * d_model * float32 bytes of the tiny model
    monkeypatch.setattr(collect, "REMOTE_RESULT_BYTES", 7 * row)
    sizes.clear()
    via = lirefs.collect_activations(model, many, remote="local", run_batch=spy)
    assert max(s for s, _ in sizes) == 7 and sum(s for s, _ in sizes) == len(many)
    assert_close_to_reference(via, local)


def test_uncached_collection_in_chunks_equals_one_chunk(
    make_tiny: Any, prompts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lirefs import collect

    model = make_tiny("gpt2")
    whole = lirefs.collect_activations(model, prompts, batch_size=2)
    monkeypatch.setattr(collect, "UNCACHED_CHUNK", 2)  # tokenize and sort 2 prompts at a time
    chunked = lirefs.collect_activations(model, prompts, batch_size=2)
    assert_close_to_reference(chunked, whole)


# ---------------------------------------------------------------------------------------------
# cache identity, bad arguments, damaged caches, locks


SHORT = ["Q: 2+2?\nA: ", "Q: Capital of Peru?\nA: ", "Q: 3 times 7?\nA: "]


def test_cache_identity_includes_the_dtype(make_tiny: Any, tmp_path: Path) -> None:
    from copy import deepcopy

    model = make_tiny("llama")
    lirefs.collect_activations(model, SHORT, cache_dir=tmp_path / "c", chunk_size=2)
    half = deepcopy(model._module).to(torch.bfloat16)
    same_weights = lirefs.wrap(
        half,
        deepcopy(model.tokenizer),
        name="tiny-llama",
        fingerprint=lirefs.model_info(model).fingerprint,
    )
    with pytest.raises(CacheMismatchError, match="dtype=float32, now dtype=bfloat16"):
        lirefs.collect_activations(same_weights, SHORT, cache_dir=tmp_path / "c", chunk_size=2)


@pytest.mark.parametrize(
    ("first", "second", "key"),
    [
        ({"batch_size": 1}, {"batch_size": 3}, "batch_size"),
        ({}, {"token_budget": 64}, "token_budget"),
    ],
)
def test_cache_identity_includes_the_batching(
    make_tiny: Any, tmp_path: Path, first: dict[str, int], second: dict[str, int], key: str
) -> None:
    model = make_tiny("llama")
    lirefs.collect_activations(model, SHORT, cache_dir=tmp_path, **first)  # type: ignore[arg-type]
    with pytest.raises(CacheMismatchError, match=f"made with {key}="):
        lirefs.collect_activations(model, SHORT, cache_dir=tmp_path, **second)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8"])
def test_chunk_and_batch_sizes_must_be_whole_and_positive(
    make_tiny: Any, tmp_path: Path, bad: Any
) -> None:
    model = make_tiny("llama")
    with pytest.raises(DataError, match=f"chunk_size must be a whole number >= 1.*got {bad!r}"):
        lirefs.collect_activations(model, SHORT, cache_dir=tmp_path, chunk_size=bad)
    with pytest.raises(DataError, match=f"batch_size must be a whole number >= 1.*got {bad!r}"):
        lirefs.collect_activations(model, SHORT, batch_size=bad)
    assert not (tmp_path / "manifest.json").exists()


def test_numpy_integers_are_whole_numbers(make_tiny: Any) -> None:
    import numpy as np

    model = make_tiny("llama")
    got = lirefs.collect_activations(model, SHORT, batch_size=np.int64(2), layers=[1])
    assert got.shape == (3, 1, 64)


@pytest.mark.parametrize("not_a_model", [None, "smollm2-135m", 3])
def test_something_that_is_not_a_model_is_refused(not_a_model: Any) -> None:
    with pytest.raises(
        lirefs.ModelNotFoundError, match=r"expected a model from lirefs\.load_model"
    ):
        lirefs.collect_activations(not_a_model, SHORT)


def _damage(path: Path, how: str) -> None:
    from safetensors.torch import save_file

    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "wrong-size":
        save_file({"states": torch.zeros(1, 4, 64)}, str(path))
    elif how == "nan":
        save_file({"states": torch.full((2, 4, 64), float("nan"))}, str(path))
    else:
        path.unlink()


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("truncated", "unreadable"),
        ("wrong-size", r"expected float32 \(2, 4, 64\)"),
        ("nan", "NaN"),
        ("deleted", "is missing"),
    ],
)
def test_a_damaged_cache_chunk_is_one_clear_error(
    make_tiny: Any, tmp_path: Path, how: str, says: str
) -> None:
    model = make_tiny("llama")
    lirefs.collect_activations(model, SHORT, cache_dir=tmp_path, chunk_size=2)
    _damage(tmp_path / "chunk-00000.safetensors", how)
    with pytest.raises(CacheMismatchError, match=says) as err:
        lirefs.collect_activations(model, SHORT, cache_dir=tmp_path, chunk_size=2)
    assert "\n" not in str(err.value) and "delete" in str(err.value)


def test_a_second_process_on_the_same_cache_gets_one_line(make_tiny: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    holder = tmp_path / "hold.py"
    holder.write_text(
        "import sys, time\nfrom lirefs.store import lock\n"
        "with lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    cache = tmp_path / "cache"
    cache.mkdir()
    child = subprocess.Popen(
        [sys.executable, str(holder), str(cache)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(lirefs.LockError, match=f"another run \\(pid {child.pid}\\)") as err:
            lirefs.collect_activations(make_tiny("llama"), SHORT, cache_dir=cache)
        assert "\n" not in str(err.value)
        assert not (cache / "manifest.json").exists()
    finally:
        child.kill()
        child.wait()
    got = lirefs.collect_activations(make_tiny("llama"), SHORT, cache_dir=cache)  # lock released
    assert got.shape[0] == len(SHORT)


def test_prompts_beyond_the_context_warn(make_tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lirefs.collect import ContextLengthWarning

    model = make_tiny("llama")
    monkeypatch.setattr(model._module.config, "max_position_embeddings", 8)
    with pytest.warns(ContextLengthWarning, match=r"1 prompts \(e.g. \[1\]\) are longer than"):
        lirefs.collect_activations(model, ["Q: hi", "Q: " + "one two three " * 4], layers=[0])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ContextLengthWarning)
        lirefs.collect_activations(model, ["Q: hi"], layers=[0])


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"\xff\xfe\x00binary", "not valid JSON"), (b"[1, 2]", "not an activation-cache manifest")],
)
def test_a_damaged_manifest_is_one_clear_error(
    make_tiny: Any, tmp_path: Path, content: bytes, says: str
) -> None:
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(CacheMismatchError, match=says) as err:
        lirefs.collect_activations(make_tiny("llama"), SHORT, cache_dir=tmp_path)
    assert "\n" not in str(err.value)
