"""Steering inside your own nnsight trace with the ``tracers`` blocks.

Runs offline on the default model (SmolLM2-135M-Instruct) in about a minute on a laptop CPU:

1. a quick reasoning-minus-memory direction from eight hand-written questions
   (``lirefs.collect_activations`` + ``lirefs.Direction.from_activations``);
2. a hand-written ``model.generate`` body that applies the paper's intervention at every step
   (``tracers.paper_project``) and, in a second run, adds the direction at one layer for the
   generated tokens only (``tracers.add`` with ``positions="generated"``);
3. the same generations through ``lirefs.generate``, to show both routes agree.

    python examples/custom_trace.py
"""

from __future__ import annotations

import warnings

import torch

import lirefs
import tracers

REASONING = [
    "A train covers 60 km in 45 minutes. What is its speed in km per hour?",
    "If 3x + 5 = 20, what is x?",
    "A box holds 12 apples; 5 are eaten and 7 are added. How many are left?",
    "What is 15% of 80?",
]
MEMORY = [
    "What is the capital of Australia?",
    "Who painted the Mona Lisa?",
    "Which element has the symbol Au?",
    "In which year did the Second World War end?",
]
QUESTIONS = ["What is 17 times 23?", "Who wrote Hamlet?"]
LAYER = 15  # residual index whose direction we use
ALPHA = -0.1  # paper mode, compounds to (1 - 0.1)^30, about 0.04, over SmolLM2's 30 blocks
NEW_TOKENS = 20


def prompt(question: str) -> str:
    return "Q: " + question + "\nA: "


def custom_generate(model, inputs, r_hat, mode):  # type: ignore[no-untyped-def]
    """One hand-written generate trace; returns ``[batch, prompt + new]`` token ids."""
    tokens = None  # bound before the block, assigned inside it (see docs/steering.md)
    pad = model.tokenizer.pad_token_id
    with torch.inference_mode(), warnings.catch_warnings():
        # An open `tr.all()` loop ends by asking for a step the run never makes: expected.
        warnings.filterwarnings("ignore", message=".*was never reached.*")
        with model.generate(max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=pad) as tr:
            with tr.invoke(inputs):
                for step in tr.all():  # step 0 = prompt pass, then one pass per new token
                    if mode == "paper":
                        tracers.paper_project(model, r_hat, ALPHA, step=step)
                    else:
                        tracers.add(model, LAYER, r_hat, 8.0, positions="generated", step=step)
            with tr.invoke():
                tokens = tr.result.save()
    return tokens


def main() -> None:
    torch.manual_seed(0)
    model = lirefs.load_model("smollm2-135m", device="cpu")
    info = lirefs.model_info(model)

    reasoning = lirefs.collect_activations(model, [prompt(q) for q in REASONING])
    memory = lirefs.collect_activations(model, [prompt(q) for q in MEMORY])
    liref = lirefs.Direction.from_activations(reasoning, memory, model=model)
    r_hat = tracers.unit_vector(liref.vector(LAYER))  # r / (||r|| + 1e-8), float64
    print(f"{liref}; using layer {LAYER}, |r| = {liref.norm(LAYER):.2f}")
    print(
        f"paper mode alpha {ALPHA}: effective scale (1 + alpha)^{info.n_layers} = "
        f"{lirefs.effective_scale(ALPHA, info.n_layers):.3f}\n"
    )

    prompts = [prompt(q) for q in QUESTIONS]
    tok = model.tokenizer  # lirefs.load_model sets left padding
    inputs = tok(prompts, return_tensors="pt", padding=True)
    width = inputs["input_ids"].shape[1]

    paper = custom_generate(model, inputs, r_hat, "paper")
    added = custom_generate(model, inputs, r_hat, "add")
    plain = lirefs.generate(model, prompts, max_new_tokens=NEW_TOKENS)
    api = lirefs.generate(
        model, prompts, direction=liref, layer=LAYER, alpha=ALPHA, max_new_tokens=NEW_TOKENS
    )

    for row, question in enumerate(QUESTIONS):
        print(f"Q: {question}")
        print(f"  plain        : {plain.texts[row].strip()!r}")
        text = tok.decode(paper[row, width:], skip_special_tokens=True).strip()
        print(f"  paper {ALPHA:+.2f}  : {text!r}")
        print(f"  lirefs API   : {api.texts[row].strip()!r}")
        text = tok.decode(added[row, width:], skip_special_tokens=True).strip()
        print(f"  add 8 r̂ @{LAYER} : {text!r}\n")
    # The API trims at the end-of-sequence token; compare the untrimmed prefix it returns.
    same = all(
        paper[row, width : width + len(ids)].tolist() == ids
        for row, ids in enumerate(api.token_ids)
    )
    print(f"hand-written trace == lirefs.generate: {same}")


if __name__ == "__main__":
    main()
