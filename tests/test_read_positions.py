"""Read positions: last token, end of the question, mean of the last k tokens.

Each mode is checked against a plain-transformers forward (``output_hidden_states``, one prompt at
a time, no padding) whose index or mean is computed by hand here; lirefs batches left-padded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import lirefs
import tracers
from lirefs.errors import CacheMismatchError, DataError
from lirefs.reading import CHAT_FORMAT, PLAIN_FORMAT, ReadMismatchWarning

#: Questions ending in different characters, so the set's shared suffix is exactly "\nA: ".
QUESTIONS = [
    "What is 2+2?",
    "Name a red fruit.",
    "Tom has 3 apples and eats one, how many are left",
    "Which element has the symbol Fe, iron or gold?",
    "Spell cat backwards!",
]
PLAIN = [f"Q: {q}\nA: " for q in QUESTIONS]


def hidden_states(model: Any, prompt: str) -> torch.Tensor:
    """``[L + 1, t, d]`` float32: HF hidden states of one unpadded prompt."""
    enc = model.tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        hs = model._module(**enc, output_hidden_states=True).hidden_states
    return torch.stack([h[0] for h in hs]).float()


def assert_close(acts: torch.Tensor, ref: torch.Tensor) -> None:
    """DESIGN.md anchor: max |diff| <= 1e-5 x the layer's largest activation."""
    assert acts.shape == ref.shape
    scale = ref.abs().amax(dim=(0, 2), keepdim=True).clamp_min(1.0)
    worst = ((acts - ref).abs() / scale).max().item()
    assert worst <= 1e-5, f"relative difference {worst:.2e}"


def chat_prompts(model: Any) -> list[str]:
    tok = model.tokenizer
    return [
        tok.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        for q in QUESTIONS
    ]


def tail_ids(model: Any, text: str) -> list[int]:
    return list(model.tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_question_end_of_a_plain_set_reads_before_the_answer_cue(
    make_tiny: Any, family: str
) -> None:
    model = make_tiny(family)
    cue = tail_ids(model, "\nA: ")  # the suffix every prompt of PLAIN shares, known by hand
    refs = []
    for p in PLAIN:
        ids = model.tokenizer(p)["input_ids"]
        assert ids[-len(cue) :] == cue
        refs.append(hidden_states(model, p)[:, len(ids) - len(cue) - 1])
    acts = lirefs.collect_activations(model, PLAIN, batch_size=len(PLAIN), read="question_end")
    assert_close(acts, torch.stack(refs))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_question_end_of_a_chat_set_reads_the_questions_last_token(
    make_tiny: Any, family: str
) -> None:
    model = make_tiny(family)
    prompts = chat_prompts(model)
    tail = tail_ids(model, "<|im_end|>\n<|im_start|>assistant\n")  # the template's closing tokens
    refs = []
    for p, q in zip(prompts, QUESTIONS, strict=True):
        ids = model.tokenizer(p)["input_ids"]
        assert ids[-len(tail) :] == tail
        last_word = tail_ids(model, q)[-1]
        assert ids[len(ids) - len(tail) - 1] == last_word  # really the question's last token
        refs.append(hidden_states(model, p)[:, len(ids) - len(tail) - 1])
    acts = lirefs.collect_activations(model, prompts, batch_size=2, read="question_end")
    assert_close(acts, torch.stack(refs))


def test_a_given_question_suffix_pins_the_position(make_tiny: Any) -> None:
    model = make_tiny("llama")
    cue = tail_ids(model, "A: ")  # shorter than the shared suffix: read the "\n" before it
    refs = [hidden_states(model, p)[:, -len(cue) - 1] for p in PLAIN]
    acts = lirefs.collect_activations(
        model, PLAIN, batch_size=3, read="question_end", question_suffix=cue
    )
    assert_close(acts, torch.stack(refs))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_mean_last_k_averages_real_tokens_only(make_tiny: Any, family: str, k: int) -> None:
    model = make_tiny(family)
    refs = [hidden_states(model, p)[:, -k:].mean(dim=1) for p in PLAIN]
    acts = lirefs.collect_activations(model, PLAIN, batch_size=len(PLAIN), read=f"mean-last-{k}")
    assert_close(acts, torch.stack(refs))


def test_last_stays_the_default(make_tiny: Any) -> None:
    model = make_tiny("gpt2")
    refs = [hidden_states(model, p)[:, -1] for p in PLAIN]
    assert_close(lirefs.collect_activations(model, PLAIN, batch_size=2), torch.stack(refs))


def test_mean_last_tracer_ignores_pad_positions(make_tiny: Any) -> None:
    """A row shorter than k (left-padded) averages its real tokens, never the pads."""
    model = make_tiny("gpt2")
    short, long = "Q: Hi\nA: ", PLAIN[2]
    enc = model.tokenizer([long, short], return_tensors="pt", padding=True)
    n_short = int(enc["attention_mask"][1].sum())
    k = n_short + 3
    with torch.no_grad(), model.trace(dict(enc)) as tr:
        got = tracers.mean_last(model, [0, 2], k, enc["attention_mask"]).save()
        tr.stop()
    ref_short = hidden_states(model, short)[[0, 2]].mean(dim=1)
    assert_close(got[1:].float(), ref_short[None])


@pytest.mark.parametrize(
    ("read", "prompts", "words"),
    [
        ("mean-last-9", ["Q: a\nA: ", "Q: What is two plus two?\nA: "], "prompt 0 has only"),
        ("question_end", ["Q: What is 2+2?\nA: ", "\nA: "], "prompt 1 has an empty question"),
        ("question_end", ["Q: What is 2+2?\nA: "], "empty question part"),
        ("mean-last-0", PLAIN, "read must be one of"),
        ("first", PLAIN, "read must be one of"),
    ],
)
def test_a_read_position_outside_the_prompt_is_one_clear_line(
    make_tiny: Any, read: str, prompts: list[str], words: str
) -> None:
    with pytest.raises(DataError, match=words) as info:
        lirefs.collect_activations(make_tiny("llama"), prompts, read=read)
    assert "\n" not in str(info.value)


def test_a_question_suffix_the_prompts_lack_is_refused(make_tiny: Any) -> None:
    model = make_tiny("llama")
    with pytest.raises(DataError, match="does not end with the question suffix"):
        lirefs.collect_activations(model, PLAIN, read="question_end", question_suffix=[1, 2])
    with pytest.raises(DataError, match="question_suffix is for read='question_end'"):
        lirefs.collect_activations(model, PLAIN, question_suffix=[216])


def test_remote_local_path_reads_the_same(make_tiny: Any) -> None:
    model = make_tiny("llama")
    for read in ("question_end", "mean-last-3"):
        local = lirefs.collect_activations(model, PLAIN, batch_size=2, read=read)
        far = lirefs.collect_activations(model, PLAIN, batch_size=2, read=read, remote="local")
        assert torch.equal(local, far), read


def test_the_read_is_part_of_the_cache_identity(make_tiny: Any, tmp_path: Path) -> None:
    model = make_tiny("llama")
    lirefs.collect_activations(model, PLAIN, cache_dir=tmp_path, read="mean-last-2")
    with pytest.raises(CacheMismatchError, match="read=mean-last-2, now read=last"):
        lirefs.collect_activations(model, PLAIN, cache_dir=tmp_path)
    again = lirefs.collect_activations(model, PLAIN, cache_dir=tmp_path, read="mean-last-2")
    fresh = lirefs.collect_activations(model, PLAIN, read="mean-last-2")
    assert_close(again, fresh)


def tiny_sets() -> Any:
    from lirefs.data import Question, QuestionSets

    def q(text: str, label: str, i: int) -> Question:
        return Question(text, "1", label, f"{label}-{i}", f"{label}-g{i}", "test", "MIT")

    reasoning = [q(f"What is {a} plus {a + 3} times two?", "reasoning", a) for a in range(12)]
    memory = [q(f"Which city is capital number {a} of the list?", "memory", a) for a in range(12)]
    return QuestionSets(reasoning, memory, name="tiny")


def test_the_read_travels_into_split_and_direction_metadata(make_tiny: Any, tmp_path: Path) -> None:
    from lirefs.analysis import ActivationSplit
    from lirefs.pipeline import collect_split, find_direction

    model = make_tiny("llama")
    split = collect_split(model, tiny_sets(), test_fraction=0.5, read="question_end")
    cue = tail_ids(model, "\nA: ")
    assert split.metadata["settings"]["read"] == "question_end"
    assert split.metadata["settings"]["read_suffix"][-len(cue) :] == cue
    split.save(tmp_path / "acts.safetensors")
    loaded = ActivationSplit.load(tmp_path / "acts.safetensors")
    assert loaded.metadata["settings"]["read"] == "question_end"
    direction, _ = find_direction(loaded, n_permutations=5)
    direction.save(tmp_path / "d.safetensors")
    back = lirefs.Direction.load(tmp_path / "d.safetensors")
    assert back.metadata["settings"]["read"] == "question_end"
    assert back.metadata["settings"]["prompt_format"] == PLAIN_FORMAT


def test_scoring_a_split_read_another_way_warns_once(make_tiny: Any) -> None:
    from lirefs.analysis import split_report
    from lirefs.pipeline import collect_split, find_direction

    model = make_tiny("llama")
    direction, _ = find_direction(
        collect_split(model, tiny_sets(), test_fraction=0.5, read="mean-last-2"), n_permutations=5
    )
    other = collect_split(model, tiny_sets(), test_fraction=0.5)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        split_report(direction, other, n_permutations=5)
    mine = [w for w in seen if issubclass(w.category, ReadMismatchWarning)]
    assert len(mine) == 1 and "'mean-last-2'" in str(mine[0].message)


def test_steering_chat_prompts_with_a_plain_direction_warns_once(make_tiny: Any) -> None:
    model = make_tiny("llama")
    acts = lirefs.collect_activations(model, PLAIN[:4])
    direction = lirefs.Direction.from_activations(
        acts[:2], acts[2:], model=model, settings={"prompt_format": PLAIN_FORMAT, "read": "last"}
    )
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        lirefs.generate(
            model,
            chat_prompts(model)[:2],
            direction=direction,
            layer=2,
            alpha=[0.0, 0.1],
            max_new_tokens=2,
        )
        lirefs.generate(model, PLAIN[:2], direction=direction, layer=2, max_new_tokens=2)
    mine = [w for w in seen if issubclass(w.category, ReadMismatchWarning)]
    assert len(mine) == 1 and CHAT_FORMAT in str(mine[0].message)


def test_cli_collect_takes_a_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from lirefs.cli import main

    out = tmp_path / "a.safetensors"
    bad = CliRunner().invoke(main, ["collect", "--read", "mean-last-x", "-o", str(out)])
    assert bad.exit_code != 0 and "read must be one of" in bad.output
    assert "Traceback" not in bad.output and not out.exists()
