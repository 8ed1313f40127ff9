"""Write examples/walkthrough.ipynb, the whole lirefs pipeline as a notebook, with its outputs.

The notebook is generated so that its cells live in reviewable Python source; it is committed
executed, so that it reads on a code host without running it. Run from the repository root::

    python scripts/make_walkthrough.py --execute  # run it (a few minutes) and write it with outputs
    python scripts/make_walkthrough.py            # rewrite the cells, dropping the outputs
    python scripts/make_walkthrough.py --check    # exit 1 if the committed cells are stale

``--execute`` runs the cells with nbclient in the ``python3`` kernel of this interpreter, in a
temporary folder (the files it writes are not kept), and keeps the outputs deterministic: no
execution timings or kernel metadata, and no path of this machine (checked: a run whose outputs
name this interpreter's prefix or the temporary folder is refused). tests/test_notebook.py checks
the committed outputs and executes the notebook again. Needs ``nbformat``, ``nbclient`` and
``ipykernel`` (in the ``test`` extra); ``make notebook`` runs ``--execute``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "walkthrough.ipynb"

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """\
# lirefs walkthrough: the reasoning direction of SmolLM2, end to end

This notebook runs the whole method of Hong et al. (2025, [arXiv 2503.23084](https://arxiv.org/abs/2503.23084))
on the offline default model, SmolLM2-135M-Instruct, and the built-in question sets:

1. **find** the direction: mean last-prompt-token residual state on reasoning questions minus the
   mean on memory questions, per layer, from a train half;
2. **report** it per layer on the held-out half, against shuffled labels and prompt length;
3. **transfer**: score it on `builtin-matched`, where both classes share one surface form;
4. **steer** with the paper's edit `x <- x + alpha (x·r̂) r̂` in every block, with its effective scale;
5. **evaluate** a few alphas on a small slice of `builtin-facts`.

Everything runs on a CPU in a few minutes because the sizes below are small; raise `N_PER_CLASS`,
`PERMUTATIONS` and `EVAL_ITEMS` for numbers worth quoting (see `docs/results-smollm2.md`).
Layer convention everywhere: residual index `l == HF output_hidden_states[l]` (0 = embeddings,
`L` = final norm output).""",
    ),
    (
        "code",
        """\
import os
import platform
import warnings
from pathlib import Path

os.environ.setdefault("LIREFS_PROGRESS", "0")        # no progress bars in the saved outputs
os.environ.setdefault("HF_HUB_OFFLINE", "1")         # nothing is fetched from a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm without ipywidgets

from IPython.display import HTML, Image, display  # noqa: E402  (after the settings above)

import lirefs  # noqa: E402
from lirefs import analysis  # noqa: E402

N_PER_CLASS = 40     # questions per class taken from each built-in set
PERMUTATIONS = 50    # label shufflings per layer for the chance baseline
EVAL_ITEMS = 8       # builtin-facts items per alpha
SEED = 0
OUT = Path("walkthrough-output")   # plots and the HTML report go here
OUT.mkdir(exist_ok=True)


def show_table(rows, columns=None):
    \"\"\"A list of dicts as an HTML table (one row per dict).\"\"\"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{row.get(c, '')}</td>" for c in columns) + "</tr>" for row in rows
    )
    display(HTML(f"<table><tr>{head}</tr>{body}</table>"))


print("lirefs", lirefs.__version__, "on Python", platform.python_version())""",
    ),
    (
        "md",
        "## The model\n\n`load_model` returns an nnsight model; `model_info` says what lirefs "
        "knows about it (the fingerprint goes into every file it writes).",
    ),
    (
        "code",
        """\
model = lirefs.load_model("smollm2-135m", device="cpu")
info = lirefs.model_info(model)
print(info.name, info.architecture, "| L =", info.n_layers, "blocks | d_model =", info.d_model)""",
    ),
    (
        "md",
        """\
## 1. Find the direction

`lirefs.data.load("builtin")` gives project-written reasoning questions (multi-step arithmetic) and
memory questions (fact recall). `collect_split` splits each class by template (no paraphrase sits on
both sides), and collects the last prompt token's residual state at every layer, `[n, L + 1, d_model]`.
`find_direction` builds the direction from the train half in float64 and picks its layer on the
held-out half only.""",
    ),
    (
        "code",
        """\
sets = lirefs.data.load("builtin").subset(N_PER_CLASS, seed=SEED)
print(len(sets.reasoning), "reasoning,", len(sets.memory), "memory questions, e.g.:")
print("  reasoning:", sets.reasoning[0].text)
print("  memory:   ", sets.memory[0].text)

split = analysis.collect_split(model, sets, test_fraction=0.3, seed=SEED)
liref, report = analysis.find_direction(split, n_permutations=PERMUTATIONS, seed=SEED)
print(liref)
print("train/test counts:", split.metadata["data"]["counts"])""",
    ),
    (
        "md",
        """\
## 2. The layer report and its baselines

Per residual index: held-out AUROC of the projection score `h_l · r̂_l` (reasoning = positive),
the 95th percentile of the same AUROC under shuffled labels (chance), Cohen's d, a logistic probe,
the AUROC on length-matched pairs, and the in-sample AUROC. `*` marks the layer chosen on held-out
data. The summary then compares the best layer with prompt length alone as a classifier.""",
    ),
    (
        "code",
        """\
show_table(report.table_rows())
print(report.summary())""",
    ),
    (
        "code",
        """\
plots = analysis.write_report_plots(report, liref, split.test_reasoning, split.test_memory, OUT)
display(Image(filename=str(OUT / "layer_auroc.png")))
display(Image(filename=str(OUT / f"scores_layer{report.best_layer}.png")))""",
    ),
    (
        "md",
        """\
## 3. The transfer test on `builtin-matched`

The built-in reasoning and memory questions differ in surface form (length, numbers, wording), so a
direction could separate them by form alone. `builtin-matched` holds reasoning and memory questions
of the same form and answer type over the same facts, paired by length. Each set's own direction is
scored on each set's held-out half; a `builtin` direction that still separates `builtin-matched`
carries more than surface form. (A lirefs without that set skips this cell's test.)""",
    ),
    (
        "code",
        """\
transfer = None
transfer_plots = []
try:
    matched = lirefs.data.load("builtin-matched").subset(N_PER_CLASS, seed=SEED)
except lirefs.DataError as exc:
    print("transfer test skipped:", exc)
else:
    matched_split = analysis.collect_split(model, matched, test_fraction=0.3, seed=SEED)
    directions, transfer = analysis.split_transfer(
        {"builtin": split, "builtin-matched": matched_split},
        {"builtin": liref},
        n_permutations=PERMUTATIONS,
        seed=SEED,
    )
    show_table(transfer.table_rows())
    show_table(transfer.baseline_rows())
    print(transfer.summary())
    transfer_plots = [analysis.plot_transfer(transfer, OUT / "transfer.png")]
    display(Image(filename=str(transfer_plots[0])))""",
    ),
    (
        "md",
        """\
## 4. Steering in the paper's mode

`mode="project"` applies `x <- x + alpha (x·r̂) r̂` to every block's input, attention output and MLP
output, with `r̂` taken from the chosen layer. The component along `r̂` therefore compounds to about
`(1 + alpha)^L`: over SmolLM2's 30 blocks a small alpha is a large edit. `effective_scale` and
`scale_table` show it; `mode="project-calibrated"` takes the total scale instead.""",
    ),
    (
        "code",
        """\
alphas = [-0.1, -0.05, 0.0, 0.05, 0.1]
L = info.n_layers
show_table(
    [
        {
            "alpha": a,
            "per-edit scale": f"{1 + a:.2f}",
            "effective scale (1 + alpha)^L": f"{lirefs.effective_scale(a, L):.3g}",
            "calibrated per-edit alpha for total 1 + alpha": f"{lirefs.calibrated_alpha(a, L):.4f}",
        }
        for a in alphas
    ]
)
rows = lirefs.scale_table(alphas, L, mode="project")
show_table([{k: f"{v:.3g}" for k, v in row.items()} for row in rows[:: max(1, L // 6)]])""",
    ),
    (
        "code",
        """\
prompts = ["Q: Tom has 3 boxes of 12 pens and gives away 7 pens. How many pens are left?\\nA: "]
outs = lirefs.sweep(
    model, prompts, [0.0, -0.1, 0.1], direction=liref, mode="project", max_new_tokens=40
)
for alpha, out in outs.items():
    scale = lirefs.effective_scale(alpha, L)
    print(f"alpha={alpha:+.2f} (effective scale {scale:.3g}): {out.texts[0]!r}")""",
    ),
    (
        "md",
        """\
## 5. A small evaluation

`evaluate` generates once per alpha (0 = unsteered, no edit at all) and reads every answer two
ways: strictly (the benchmark's answer phrase) and flexibly. It also scores the gold answer's
log-probability under each steering (teacher-forced) and flags degenerate outputs (repetition,
no text). Eight items give wide intervals: this shows the mechanics, not a result.""",
    ),
    (
        "code",
        """\
result = lirefs.evaluate(
    model, "builtin-facts", direction=liref, alphas=(0.0, -0.05, 0.05), limit=EVAL_ITEMS, seed=SEED
)
show_table(
    [
        {
            "alpha": row["alpha"],
            "strict accuracy": f"{row['accuracy']:.2f} [{row['ci'][0]:.2f}, {row['ci'][1]:.2f}]",
            "flexible accuracy": f"{row['flexible_accuracy']:.2f}",
            "no answer": f"{row['no_answer_rate']:.2f}",
            "gold log-prob (nats)": f"{row['gold_logprob']:.2f}",
            "degenerate": f"{row['degenerate']:.2f}",
        }
        for row in result.rows()
    ]
)
for record in result.records[:3]:
    print(f"alpha={record['alpha']:+.2f} {record['prompt'].splitlines()[-2]!r} -> {record['output']!r}")""",
    ),
    (
        "code",
        """\
display(Image(filename=str(result.plot(OUT / "evaluation.png"))))""",
    ),
    (
        "md",
        """\
## 6. One page of all of it

`write_html_report` embeds the tables, the baselines, every plot, the metadata (model fingerprint,
data hash, settings, lirefs version) and the evaluation in one self-contained `report.html`
(what `lirefs demo` and `lirefs report --html --eval` write).""",
    ),
    (
        "code",
        """\
result.save(OUT / "eval")
page = analysis.write_html_report(
    OUT / "report.html",
    report,
    liref,
    plots=plots,
    transfer=transfer,
    transfer_plots=transfer_plots,
    evaluations=[analysis.load_evaluation(OUT / "eval")],
    title="lirefs walkthrough: SmolLM2-135M-Instruct on builtin",
)
liref.save(OUT / "liref.safetensors")
print("wrote", page.relative_to(OUT.parent))""",
    ),
    (
        "md",
        """\
## The same on NDIF

On [NDIF](https://ndif.us) the model runs on the server: load it with `remote=True` and every
trace above goes there (set an API key from https://login.ndif.us first). Only the calls that touch
the model change; see `docs/remote.md`.

```python
import os
os.environ["NDIF_API_KEY"] = "..."                      # or: export NDIF_API_KEY=... in the shell

model = lirefs.load_model("meta-llama/Llama-3.1-8B", remote=True)   # built without weights
sets = lirefs.data.load("builtin")
split = analysis.collect_split(model, sets, test_fraction=0.3, remote=True, cache_dir="acts/")
liref, report = analysis.find_direction(split, n_permutations=200)
outs = lirefs.sweep(model, prompts, [0.0, -0.1, 0.1], direction=liref, remote=True)
result = lirefs.evaluate(model, "gsm8k", direction=liref, alphas=(0.0, -0.05, 0.05),
                         limit=100, remote=True, records_path="gsm8k.jsonl")   # resumable
```""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook: the cells above, no outputs, the venv's ``python3`` kernel."""
    cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    return nb


#: Seconds per cell: the notebook takes about 3 minutes in all on 2 idle cores; a busy machine may
#: be several times slower.
CELL_TIMEOUT = 900


def execute(
    nb: nbformat.NotebookNode, folder: Path, timeout: int = CELL_TIMEOUT
) -> nbformat.NotebookNode:
    """A copy of ``nb`` run top to bottom in ``folder`` (its working directory), with at most
    ``timeout`` seconds per cell."""
    import nbclient

    done = copy.deepcopy(nb)
    client = nbclient.NotebookClient(
        done,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return done


def strip_volatile(nb: nbformat.NotebookNode, template: nbformat.NotebookNode) -> None:
    """Drop what changes from run to run: cell execution timings and the kernel's metadata (the
    notebook keeps ``template``'s); the outputs and execution counts stay."""
    nb.metadata = copy.deepcopy(template.metadata)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            output.get("metadata", {}).pop("execution", None)


def leaked_paths(nb: nbformat.NotebookNode, paths: list[str]) -> list[str]:
    """The ``paths`` that appear in ``nb``'s outputs (they would tie the file to this machine)."""
    text = nbformat.writes(nb)
    return [p for p in paths if p and p in text]


def main(argv: list[str] | None = None) -> int:
    """Write the notebook (with ``--execute`` run, with its outputs), or with ``--check``
    compare its cells with the committed ones (outputs aside)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the cells are stale")
    parser.add_argument("--execute", action="store_true", help="run it and keep the outputs")
    parser.add_argument(
        "--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell with --execute"
    )
    args = parser.parse_args(argv)
    nb = build()
    if args.check:
        current = NOTEBOOK.read_text(encoding="utf-8") if NOTEBOOK.is_file() else ""
        if not current or without_outputs(nbformat.reads(current, as_version=4)) != nb:
            print(f"{NOTEBOOK} is stale; run python scripts/make_walkthrough.py", file=sys.stderr)
            return 1
        return 0
    if args.execute:
        with tempfile.TemporaryDirectory(prefix="walkthrough-") as tmp:
            done = execute(nb, Path(tmp), args.timeout)
            strip_volatile(done, nb)
            local = [tmp, sys.prefix, str(Path.home()), tempfile.gettempdir() + "/"]
            leaks = leaked_paths(done, local)
        if leaks:
            print(f"the outputs name local paths {leaks}; not written", file=sys.stderr)
            return 1
        nb = done
    NOTEBOOK.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    print(f"wrote {NOTEBOOK}")
    return 0


def without_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with no outputs and no execution counts (what ``build`` makes, once run)."""
    bare = copy.deepcopy(nb)
    for cell in bare.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return bare


if __name__ == "__main__":
    sys.exit(main())
