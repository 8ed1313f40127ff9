"""The self-contained HTML report: content, refusal of bad input, and a real browser render."""

from __future__ import annotations

import base64
import html
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import lirefs
from lirefs.analysis import (
    ActivationSplit,
    load_evaluation,
    write_html_report,
    write_report_plots,
)
from lirefs.errors import DataError, MetadataMismatchError
from lirefs.store import make_metadata

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
N_LAYERS, D = 4, 16
MODEL = {"name": "toy <model>", "fingerprint": "toy-fp-1", "n_layers": N_LAYERS, "d_model": D}


def gaussian_classes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(n, N_LAYERS + 1, D, generator=g)
    m = torch.randn(n, N_LAYERS + 1, D, generator=g)
    r[:, :, 0] += 3.0 * torch.arange(N_LAYERS + 1) / N_LAYERS
    r[:, 0], m[:, 0] = 1.0, 1.0
    return r, m


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("report")
    train, test = gaussian_classes(30, 1), gaussian_classes(20, 2)
    direction = lirefs.Direction.from_activations(*train, model=MODEL, data={"hash": "data-h1"})
    report = lirefs.layer_report(
        direction,
        *test,
        train_reasoning_acts=train[0],
        train_memory_acts=train[1],
        test_reasoning_lengths=list(range(20, 40)),
        test_memory_lengths=list(range(10, 30)),
        n_permutations=50,
    )
    direction.metadata["settings"]["best_layer"] = report.best_layer
    plots = write_report_plots(report, direction, *test, folder)
    return {"direction": direction, "report": report, "plots": plots, "test": test, "dir": folder}


#: The fake evaluation's prompt frame and outputs: the page must escape them and show the trailing
#: space of the prompt.
PROMPT = "Q: What is {a} plus 3?\nA: "
OUTPUT = "<b>{a} + 3</b> = {s}. The final answer is {s}."


def fake_records(alphas: tuple[float, ...], n: int) -> list[dict[str, Any]]:
    """Per-item records of ``n`` items at each alpha, as `lirefs evaluate` stores them."""
    return [
        {
            "alpha": alpha,
            "index": i,
            "id": f"item-{i}",
            "extracted_flexible": str(i + 3 + (alpha > 0)),
            "correct_flexible": not alpha > 0,
            "prompt": "Q: What is 1 plus 1?\nA: 2.\n\n" + PROMPT.format(a=i),
            "output": OUTPUT.format(a=i, s=i + 3 + (alpha > 0)),
            "extracted": str(i + 3 + (alpha > 0)),
            "gold": str(i + 3),
            "correct": not alpha > 0,
        }
        for alpha in alphas
        for i in range(n)
    ]


def fake_evaluation(folder: Path, direction: lirefs.Direction | None, layer: int | None) -> Path:
    """An evaluation folder in the format `lirefs evaluate --out` writes (result.json and
    records.jsonl)."""
    import hashlib

    summary = None
    if direction is not None and layer is not None:
        unit = direction.unit(layer).numpy().tobytes()
        summary = {
            "model": "toy",
            "fingerprint": MODEL["fingerprint"],
            "data_hash": (direction.metadata.get("data") or {}).get("hash"),
            "unit_hash": hashlib.sha256(unit).hexdigest()[:16],
        }
    meta = make_metadata(
        "evaluation",
        model=MODEL,
        data={"benchmark": "builtin-arithmetic", "hash": "b-1"},
        settings={"alphas": [0.0, 0.1], "layer": layer, "mode": "project", "direction": summary},
    )
    from lirefs.evaluation import EvalResult, GroupResult, PairedTest

    paired = PairedTest(0.25, (0.0, 0.5), 1.0, n=4, n_gained=1, n_lost=0, p_holm=1.0)
    group_test = PairedTest(0.5, (0.0, 1.0), 0.5, n=2, n_gained=1, n_lost=0, p_holm=1.0)
    result = EvalResult(
        benchmark="builtin-arithmetic",
        alphas=[0.0, 0.1],
        n_items=4,
        accuracy={0.0: 0.5, 0.1: 0.75},
        ci={0.0: (0.1, 0.9), 0.1: (0.3, 1.0)},
        no_answer_rate={0.0: 0.0, 0.1: 0.0},
        paired={0.1: paired},
        flexible_accuracy={0.0: 0.5, 0.1: 0.75},
        flexible_ci={0.0: (0.1, 0.9), 0.1: (0.3, 1.0)},
        records=fake_records((0.0, 0.1), 4),
        metadata=meta,
        layer=layer,
        by_group={
            0.0: {
                "add": GroupResult(0.5, (0.0, 1.0), 2, 1),
                "sub": GroupResult(0.5, (0.0, 1.0), 2, 1),
            },
            0.1: {
                "add": GroupResult(1.0, (0.2, 1.0), 2, 2, group_test),
                "sub": GroupResult(0.5, (0.0, 1.0), 2, 1, group_test),
            },
        },
    )
    folder.mkdir(parents=True, exist_ok=True)
    result.save(folder)
    return folder


def test_page_holds_every_layer_the_baselines_plots_and_metadata(
    made: dict, tmp_path: Path
) -> None:
    report, direction = made["report"], made["direction"]
    page = write_html_report(tmp_path / "report.html", report, direction, plots=made["plots"])
    text = page.read_text(encoding="utf-8")
    rows = re.findall(r"<tr[^>]*>\s*<td class=\"key\">(\d+)( \*)?</td>", text)
    assert [int(r[0]) for r in rows[: N_LAYERS + 1]] == list(range(N_LAYERS + 1))
    assert f'<tr class="best"><td class="key">{report.best_layer} *</td>' in text
    assert f"{report.length_auroc:.3f}" in text and f"{report.best_auroc:.3f}" in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert [base64.b64decode(b) for b in images] == [p.read_bytes() for p in made["plots"]]
    assert "toy-fp-1" in text and "data-h1" in text and lirefs.__version__ in text
    assert "toy &lt;model&gt;" in text and "<model>" not in text  # escaped
    assert "<script" not in text and 'src="http' not in text  # nothing to run or fetch


def test_transfer_and_evaluation_sections(made: dict, tmp_path: Path) -> None:
    direction, report = made["direction"], made["report"]
    transfer = lirefs.transfer_report({"toy": direction}, {"toy": made["test"]}, n_permutations=20)
    folder = fake_evaluation(tmp_path / "eval", direction, report.best_layer)
    page = write_html_report(
        tmp_path / "r.html",
        report,
        direction,
        transfer=transfer,
        evaluations=[load_evaluation(folder)],
    )
    text = page.read_text(encoding="utf-8")
    assert "Cross-source transfer" in text and f"{transfer.auroc['toy']['toy']:.3f}" in text
    assert "builtin-arithmetic: 4 items, steered at layer" in text
    # the evaluation table with readable column names: k/n, interval, the paired change and p
    for column in ("accuracy", "95% interval", "change vs α=0", "p vs α=0 (Holm)", "no answer"):
        assert f">{column}</th>" in text
    assert "0.750 (0/4)" in text and "+0.250 [0.000, 0.500]" in text and "1 (1)" in text
    assert "Per group" in text and "sub" in text  # more than one group: the per-group table
    assert "survive Holm correction at 0.05 (p_holm &lt;= 0.05): none" in text


def test_examples_show_the_same_items_at_every_alpha_escaped(made: dict, tmp_path: Path) -> None:
    direction, report = made["direction"], made["report"]
    folder = fake_evaluation(tmp_path / "eval", direction, report.best_layer)
    text = write_html_report(
        tmp_path / "r.html", report, direction, evaluations=[load_evaluation(folder)]
    ).read_text(encoding="utf-8")
    assert "Example generations" in text
    shown = re.findall(r"<p class=\"question\">item (\d+)", text)
    assert shown == ["0", "1", "2"]  # EXAMPLE_ITEMS of the 4, in order
    for i in range(3):
        for alpha in (0.0, 0.1):
            out = OUTPUT.format(a=i, s=i + 3 + (alpha > 0))
            assert html.escape(out, quote=False) in text  # escaped, never markup
    assert "<b>0 + 3</b>" not in text
    # the prompt's last part with its line break and trailing space visible
    assert 'What is 0 plus 3?<span class="ws">↵</span>\nA:<span class="ws">·</span>' in text


def test_summary_states_the_format_matched_transfer(made: dict, tmp_path: Path) -> None:
    direction, report, test = made["direction"], made["report"], made["test"]
    # a "matched" set where the classes differ by nothing: the direction cannot separate it
    g = torch.Generator().manual_seed(5)
    same = (
        torch.randn(20, N_LAYERS + 1, D, generator=g),
        torch.randn(20, N_LAYERS + 1, D, generator=g),
    )
    transfer = lirefs.transfer_report(
        {"toy": direction}, {"toy": test, "matched": same}, n_permutations=50
    )
    text = write_html_report(tmp_path / "r.html", report, direction, transfer=transfer).read_text(
        encoding="utf-8"
    )
    summary = text[text.index('<div class="summary">') : text.index("</div>")]
    assert "Format-matched transfer (the honest test)" in summary
    auc = transfer.auroc["toy"]["matched"]
    assert "On matched (20 reasoning / 20 memory held-out prompts), the toy direction" in summary
    assert f"reaches AUROC {auc:.3f}" in summary
    assert transfer.above_chance("toy", "matched") == ("does NOT" not in summary)
    # without a transfer the page says that the test is missing
    bare = write_html_report(tmp_path / "b.html", report, direction).read_text(encoding="utf-8")
    assert "Format-matched transfer (the honest test).</b> Not run for this report" in bare


def test_a_transfer_of_another_direction_is_refused(made: dict, tmp_path: Path) -> None:
    other = lirefs.Direction.from_activations(
        *gaussian_classes(10, 7), model=MODEL, data={"hash": "other"}
    )
    transfer = lirefs.transfer_report(
        {"other": other}, {"toy": made["test"]}, layers={"other": 2}, n_permutations=5
    )
    with pytest.raises(MetadataMismatchError, match="no direction built from this direction's"):
        write_html_report(tmp_path / "r.html", made["report"], made["direction"], transfer=transfer)
    assert not (tmp_path / "r.html").exists()


def test_uninformative_columns_are_folded_into_a_note(tmp_path: Path) -> None:
    # classes far apart at every layer: probe accuracy 1.000 and p at its floor everywhere
    g = torch.Generator().manual_seed(3)
    r = torch.randn(40, N_LAYERS + 1, D, generator=g)
    m = torch.randn(40, N_LAYERS + 1, D, generator=g)
    r += 3.0
    direction = lirefs.Direction.from_activations(r[:20], m[:20], model=MODEL)
    report = lirefs.layer_report(direction, r[20:], m[20:], n_permutations=30)
    assert min(report.probe_accuracy) == 1.0 and max(report.permutation_p) == 1 / 31
    text = write_html_report(tmp_path / "r.html", report, direction).read_text(encoding="utf-8")
    table = text[text.index("Held-out separation per layer") : text.index("Baselines at")]
    assert ">probe accuracy</th>" not in table and ">permutation p</th>" not in table
    assert "Permutation p is 0.0323 = 1/(30 + 1) at every layer" in table
    assert "Logistic-probe accuracy (cross-validated on the held-out prompts) is 1.000" in table
    # where they vary, they stay columns
    made_text = write_html_report(tmp_path / "v.html", *_varying(), plots=()).read_text(
        encoding="utf-8"
    )
    assert ">permutation p</th>" in made_text and ">probe accuracy</th>" in made_text


def _varying() -> tuple[Any, lirefs.Direction]:
    """A report of classes that do not differ: its p and probe accuracy vary by layer."""
    g = torch.Generator().manual_seed(4)
    train, test = ([torch.randn(20, N_LAYERS + 1, D, generator=g) for _ in "rm"] for _ in "tt")
    direction = lirefs.Direction.from_activations(*train, model=MODEL)
    return lirefs.layer_report(direction, *test, n_permutations=30), direction


def test_visible_whitespace_marks_breaks_and_trailing_blanks() -> None:
    from lirefs.analysis.html import visible_whitespace

    got = str(visible_whitespace("a <b>  \n\tc\t \nA: "))
    ws = '<span class="ws">{}</span>'.format
    assert got == f"a &lt;b&gt;{ws('··')}{ws('↵')}\n\tc{ws('⇥·')}{ws('↵')}\nA:{ws('·')}"


def test_an_existing_folder_as_html_path_is_refused(made: dict, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is an existing folder"):
        write_html_report(tmp_path, made["report"], made["direction"])
    assert list(tmp_path.iterdir()) == []


def test_an_evaluation_of_another_direction_is_refused(made: dict, tmp_path: Path) -> None:
    other = lirefs.Direction.from_activations(*gaussian_classes(10, 7), model=MODEL)
    folder = fake_evaluation(tmp_path / "eval", other, 2)
    with pytest.raises(MetadataMismatchError, match="steered with another direction"):
        write_html_report(
            tmp_path / "r.html",
            made["report"],
            made["direction"],
            evaluations=[load_evaluation(folder)],
        )
    assert not (tmp_path / "r.html").exists()


def test_an_evaluation_folder_without_a_result_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no result\.json"):
        load_evaluation(tmp_path)


def test_cli_report_html_and_its_bad_input(made: dict, tmp_path: Path) -> None:
    from lirefs.cli import main

    direction, (r, m) = made["direction"], made["test"]
    direction.save(tmp_path / "d.safetensors")
    meta = make_metadata("activation-split", model=MODEL, data={"name": "toy", "hash": "x"})
    split = ActivationSplit(
        r.clone(),
        m.clone(),
        r.clone(),
        m.clone(),
        torch.arange(20) + 20,
        torch.arange(20) + 5,
        meta,
    )
    split.save(tmp_path / "a.safetensors")
    base = ["report", "-d", str(tmp_path / "d.safetensors"), str(tmp_path / "a.safetensors")]
    runner = CliRunner()

    out = tmp_path / "out"
    good = fake_evaluation(tmp_path / "eval-good", direction, direction.chosen_layer)
    transfer = lirefs.transfer_report({"toy": direction}, {"toy": (r, m)}, n_permutations=5)
    transfer.save(tmp_path / "transfer.json")
    result = runner.invoke(
        main,
        [
            *base,
            "-o",
            str(out),
            "--permutations",
            "20",
            "--html",
            "--eval",
            str(good),
            "--transfer",
            str(tmp_path / "transfer.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "builtin-arithmetic" in text and "Cross-source transfer" in text

    (tmp_path / "folder.html").mkdir()
    bad = fake_evaluation(tmp_path / "eval-bad", lirefs.Direction.from_activations(r, m), 1)
    for extra, match in (
        (["--html", str(tmp_path / "folder.html")], "is an existing folder"),
        (["--html", "--eval", str(bad)], "another direction"),
        (["--transfer", str(tmp_path / "transfer.json")], "add --html"),
    ):
        out2 = tmp_path / f"out-{len(extra)}"
        result = runner.invoke(main, [*base, "-o", str(out2), *extra])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and match in result.output, result.output
        assert not out2.exists()  # refused before anything was written


#: Injected into a COPY of the page (the page itself has no script): after layout, the widths a
#: reader at 1400 px would scroll, written into the DOM for ``--dump-dom`` to carry out.
MEASURE = """<script>
window.addEventListener("load", () => {
  const root = document.documentElement;
  let inner = 0;
  for (const w of document.querySelectorAll("div.wrap, pre")) {
    inner = Math.max(inner, w.scrollWidth - w.clientWidth);
  }
  document.body.setAttribute("data-overflow", String(root.scrollWidth - root.clientWidth));
  document.body.setAttribute("data-inner-overflow", String(inner));
});
</script>"""


def rendered_dom(page: Path, tmp_path: Path, width: int = 1400) -> str:
    """The DOM of ``page`` laid out by headless Chromium in a ``width`` px window."""
    probe = tmp_path / "measured.html"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8"
    )
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},2400",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)")
def test_page_renders_in_headless_chromium(made: dict, tmp_path: Path) -> None:
    direction, report = made["direction"], made["report"]
    tests = {"toy": made["test"], "matched": made["test"]}
    transfer = lirefs.transfer_report({"toy": direction}, tests, n_permutations=20)
    folder = fake_evaluation(tmp_path / "eval", direction, report.best_layer)
    page = write_html_report(
        tmp_path / "report.html",
        report,
        direction,
        plots=made["plots"],
        transfer=transfer,
        evaluations=[load_evaluation(folder)],
    )
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "check_html.sh"), str(page), str(shot), "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "check_html: ok" in proc.stdout
    assert shot.stat().st_size > 40_000
    dom = rendered_dom(page, tmp_path)
    # at 1400 px nothing scrolls sideways: not the page, not a table, not a prompt
    assert re.search(r'data-overflow="0"', dom), re.findall(r"data-overflow=\"-?\d+\"", dom)
    assert re.search(r'data-inner-overflow="0"', dom), re.findall(r"data-inner-[^ ]+", dom)
    # what a reader looks at first, rendered: the summary sentence and the example generations
    assert "Format-matched transfer (the honest test).</b> On matched (20 reasoning" in dom
    assert dom.count('<p class="question">item ') == 3
    assert html.escape(OUTPUT.format(a=0, s=3), quote=False) in dom


def test_a_real_evaluation_folder_is_shown_and_another_direction_refused(
    make_tiny, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    model = make_tiny("llama")
    reasoning = [f"Q: What is {a} plus {a + 3}?\nA: " for a in range(2, 10)]
    countries = ["Peru", "Chad", "Mali", "Fiji", "Cuba", "Iran", "Oman", "Laos"]
    memory = [f"Q: What is the capital of {c}?\nA: " for c in countries]
    r = lirefs.collect_activations(model, reasoning, progress=False)
    m = lirefs.collect_activations(model, memory, progress=False)
    direction = lirefs.Direction.from_activations(r[:4], m[:4], model=model)
    report = lirefs.layer_report(direction, r[4:], m[4:], probe=False, n_permutations=10)
    direction.metadata["settings"]["best_layer"] = report.best_layer
    result = lirefs.evaluate(
        model, "builtin-arithmetic", direction=direction, alphas=(0.0, 0.1), limit=2,
        max_new_tokens=3, n_boot=50, progress=False,
    )  # fmt: skip
    folder = result.save(tmp_path / "eval")
    page = write_html_report(
        tmp_path / "r.html", report, direction, evaluations=[load_evaluation(folder)]
    )
    text = page.read_text(encoding="utf-8")
    assert f"builtin-arithmetic: 2 items, steered at layer {report.best_layer}" in text
    assert f"{result.accuracy[0.1]:.3f}" in text
    other = lirefs.Direction.from_activations(r[4:], m[4:], model=model)
    with pytest.raises(MetadataMismatchError, match="another direction"):
        write_html_report(tmp_path / "o.html", report, other, evaluations=[load_evaluation(folder)])
    assert not (tmp_path / "o.html").exists()
