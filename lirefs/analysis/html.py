"""One self-contained HTML page for a layer report: tables, baselines, plots and metadata.

A report folder of PNGs and JSON is hard to share; ``write_html_report`` puts the whole result into
one ``report.html`` that any browser opens without a server or network. It is written for a
researcher who reads it top to bottom: a summary that states the held-out separation AND the
format-matched transfer (the honest test: does the direction separate questions that share one
surface form), the prompt format with its trailing whitespace visible, the per-layer table (columns
that carry no information at the data size, such as a probe accuracy of 1.000 at every layer or a
permutation p at its floor, are folded into one line that says so), the baselines, every plot
embedded as a base64 PNG, the cross-source transfer, the evaluations (accuracy per alpha with
readable column names and a few example generations, the same items at every alpha) and the
metadata (model fingerprint, data hashes, settings, lirefs version).

The page is the jinja2 template ``templates/report.html.j2`` with autoescape on, so every text is
escaped; it has no script and no external resource. It is built in memory and written atomically:
bad input never leaves a partial file.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from ..direction import Direction
from ..errors import DataError, LirefsError, MetadataMismatchError
from ..store import atomic_write_text
from .report import LayerReport, format_float
from .transfer import TransferReport

__all__ = [
    "EvaluationSummary",
    "check_evaluation",
    "load_evaluation",
    "render_html_report",
    "write_html_report",
]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; margin: 2rem auto;
       max-width: 1180px; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin-top: 1.6rem; overflow-wrap: anywhere; }
h4 { font-size: .95rem; margin: 1.2rem 0 .3rem; }
div.summary { background: #f5f7fa; border-left: 4px solid #0072b2; padding: .2rem 1rem; }
div.summary p.honest { border-top: 1px solid #d8dee6; padding-top: .6rem; }
div.wrap { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .88rem; }
th, td { border: 1px solid #d0d4da; padding: .25rem .55rem; text-align: right; }
th { background: #eef1f5; font-weight: 600; }
th[title] { text-decoration: underline dotted; cursor: help; }
td { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.key, th.key { text-align: left; }
tr.best td { background: #e3f4e8; font-weight: 600; }
table.meta td { white-space: normal; overflow-wrap: anywhere; }
table.meta td:first-child { white-space: nowrap; }
table.gens { width: 100%; }
table.gens td.output { white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace,
       "SFMono-Regular", Menlo, monospace; font-size: .8rem; width: 100%; }
table.gens tr.right td:nth-child(2) { color: #1a7f37; }
table.gens tr.wrong td:nth-child(2) { color: #b42318; }
div.example { margin: .8rem 0 1.4rem; }
p.question { margin: .2rem 0; font-size: .9rem; }
pre.prompt { background: #fbfbf8; border: 1px solid #e4e4dc; padding: .5rem .7rem; margin: .3rem 0;
       white-space: pre-wrap; overflow-wrap: anywhere; font-size: .85rem; }
span.ws { color: #c2410c; font-weight: 600; }
div.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
       gap: 0 1.2rem; align-items: start; }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; border: 1px solid #e2e2e2; }
figcaption { font-size: .85rem; color: #555; }
code { font-size: .85rem; }
.note { color: #555; font-size: .9rem; }
p.folded { border-left: 3px solid #d0d4da; padding-left: .6rem; }
"""


@dataclass(frozen=True)
class EvaluationSummary:
    """An evaluation result read back from the folder ``lirefs evaluate --out`` wrote.

    Attributes:
        folder: where it was read from.
        result: the result's JSON form (``EvalResult.to_dict()``: benchmark, alphas, results
            rows, by_group, holm_survivors, metadata...).
        plots: PNG files of that folder, embedded beside its table.
        evaluation: the ``EvalResult`` itself (``EvalResult.load``).
    """

    folder: Path
    result: dict[str, Any]
    plots: tuple[Path, ...]
    evaluation: Any = None

    @property
    def direction(self) -> dict[str, Any] | None:
        """The direction summary recorded by the evaluation, or ``None`` for an unsteered run."""
        settings = self.result.get("metadata", {}).get("settings") or {}
        value = settings.get("direction")
        return dict(value) if isinstance(value, Mapping) else None


def load_evaluation(folder: str | Path) -> EvaluationSummary:
    """Read a folder written by ``lirefs evaluate --out`` through ``EvalResult.load`` (its
    ``result.json`` and ``records.jsonl``), with the folder's PNGs.

    Raises:
        DataError: the folder or its ``result.json`` is missing or not an evaluation result.
        MetadataMismatchError: the result was made under another layer convention.
    """
    from ..evaluation.result import EvalResult

    folder = Path(folder)
    evaluation = EvalResult.load(folder)
    return EvaluationSummary(
        folder, evaluation.to_dict(), tuple(sorted(folder.glob("*.png"))), evaluation
    )


def check_evaluation(summary: EvaluationSummary, direction: Direction) -> None:
    """Refuse an evaluation that steered with another direction than ``direction``.

    The evaluation records the SHA-256 of the unit vector it steered with (``unit_hash``, at its
    layer), the model fingerprint and the direction's data hash; all must match ``direction``.
    An unsteered evaluation (no direction) must at least come from the same model.

    Raises:
        MetadataMismatchError: with which field differs.
    """
    where = str(summary.folder)
    model = summary.result["metadata"].get("model") or {}
    ours = direction.metadata.get("model") or {}
    fingerprints = (model.get("fingerprint"), ours.get("fingerprint"))
    if all(fingerprints) and fingerprints[0] != fingerprints[1]:
        raise MetadataMismatchError(
            f"evaluation {where} ran on model {model.get('name')!r} (fingerprint "
            f"{fingerprints[0]}), but the direction is of {ours.get('name')!r} "
            f"(fingerprint {fingerprints[1]}); give evaluations of this direction's model"
        )
    recorded = summary.direction
    if recorded is None:
        return
    layer = (summary.result["metadata"].get("settings") or {}).get("layer")
    unit_hash = recorded.get("unit_hash")
    if unit_hash is None or layer is None:
        raise MetadataMismatchError(
            f"evaluation {where} records no unit_hash/layer of its direction, so it cannot be "
            "matched to this direction; rerun `lirefs evaluate` with this lirefs version"
        )
    try:
        ours_hash = hashlib.sha256(direction.unit(int(layer)).numpy().tobytes()).hexdigest()[:16]
    except LirefsError:  # a layer this direction lacks or is zero at: another direction
        ours_hash = None
    if ours_hash != unit_hash:
        raise MetadataMismatchError(
            f"evaluation {where} steered with another direction (unit vector hash {unit_hash} at "
            f"layer {layer}, this direction's is {ours_hash}; its data hash "
            f"{recorded.get('data_hash')}, this one's {(direction.metadata.get('data') or {}).get('hash')}); "
            "give evaluations run with this direction"
        )


def render_html_report(
    report: LayerReport,
    direction: Direction,
    *,
    plots: Sequence[str | Path] = (),
    transfer: TransferReport | None = None,
    transfer_plots: Sequence[str | Path] = (),
    evaluations: Sequence[EvaluationSummary] = (),
    title: str = "lirefs layer report",
) -> str:
    """The whole report page as one HTML string (see ``write_html_report``)."""
    if not isinstance(report, LayerReport):
        raise DataError(f"report must be a lirefs LayerReport, got {type(report).__name__}")
    if report.n_layers != direction.n_layers:
        raise DataError(
            f"the report covers layers 0..{report.n_layers} but the direction 0..{direction.n_layers}; "
            "give the direction the report was made with"
        )
    for summary in evaluations:
        check_evaluation(summary, direction)
    # read every file before anything is written
    figures = [_image(p) for p in plots]
    t_figures = [_image(p) for p in transfer_plots]
    e_figures = [[_image(p) for p in s.plots] for s in evaluations]
    layer_table, layer_notes = _layer_table(report)
    settings = direction.metadata.get("settings") or {}
    context = {
        "title": title,
        "style": _STYLE,
        "model_line": _model_line(report, direction),
        "summary": report.summary(),
        "honest": transfer_sentence(
            transfer, None if transfer is None else transfer_base(transfer, direction)
        ),
        "prompt_note": _prompt_note(settings),
        "prompt_format": visible_whitespace(_prompt_format(settings)),
        "layer_table": layer_table,
        "layer_notes": layer_notes,
        "baseline_table": _baseline_table(report),
        "figures": figures,
        "transfer": None if transfer is None else _transfer_context(transfer, t_figures),
        "evaluations": [
            _evaluation_context(s, imgs) for s, imgs in zip(evaluations, e_figures, strict=True)
        ],
        "metadata_table": _metadata_table(report, direction, transfer),
    }
    return _template().render(**context)


def write_html_report(
    path: str | Path,
    report: LayerReport,
    direction: Direction,
    *,
    plots: Sequence[str | Path] = (),
    transfer: TransferReport | None = None,
    transfer_plots: Sequence[str | Path] = (),
    evaluations: Sequence[EvaluationSummary] = (),
    title: str = "lirefs layer report",
) -> Path:
    """Write one self-contained HTML page of the report, atomically.

    Args:
        path: the ``.html`` file to write (its folder is created); not an existing folder.
        report: from ``lirefs.layer_report`` (or ``LayerReport.load``).
        direction: the direction the report scored (its metadata fills the metadata table).
        plots: PNG files to embed (e.g. from ``write_report_plots``).
        transfer: an optional ``TransferReport``, shown as tables with ``transfer_plots``.
        evaluations: optional results from ``load_evaluation``; each must have steered with
            ``direction`` (or be unsteered on the same model).
        title: the page title.

    Returns:
        ``path``.

    Raises:
        DataError: ``path`` is an existing folder, a plot that is not a PNG file, or a report of
            another depth than the direction.
        MetadataMismatchError: an evaluation of another direction or model.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(
            f"HTML path {str(path)!r} is an existing folder; give a file path such as "
            f"{str(path / 'report.html')!r}"
        )
    text = render_html_report(
        report,
        direction,
        plots=plots,
        transfer=transfer,
        transfer_plots=transfer_plots,
        evaluations=evaluations,
        title=title,
    )
    atomic_write_text(path, text)
    return path


# ---------------------------------------------------------------------------------------------
# pieces of the page: plain dicts and strings for the template (it escapes them)
# ---------------------------------------------------------------------------------------------

#: Characters of one model output shown in the example generations (the rest is cut with "…").
EXAMPLE_CHARS = 400
#: Items shown per evaluation in the example generations (the same items at every alpha).
EXAMPLE_ITEMS = 3


@functools.lru_cache(maxsize=1)
def _template() -> Any:
    """The page template (a ``jinja2.Template``), with autoescape on and undefined names refused."""
    import jinja2  # imported here: only the HTML page needs it

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def _image(path: str | Path) -> dict[str, str]:
    """The PNG at ``path`` as ``{"b64": base64 text, "name": file name}`` for a ``<figure>``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"plot {str(path)!r} does not exist; write the plots first")
    data = path.read_bytes()
    if data[:8] != PNG_MAGIC:
        raise DataError(f"plot {str(path)!r} is not a PNG file; only PNG plots are embedded")
    return {"b64": base64.b64encode(data).decode("ascii"), "name": path.name}


def _table(
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str] = (),
    best: int = -1,
    *,
    css: str = "",
    titles: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A table for the template's ``table`` macro: column names from the first row, cells as
    text (``_cell``), ``keys`` left-aligned, row ``best`` highlighted, ``titles`` as column hints."""
    columns = list(rows[0]) if rows else []
    body = [{c: _cell(row.get(c)) for c in columns} for row in rows]
    return {
        "columns": columns,
        "rows": body,
        "keys": list(keys),
        "best": best,
        "css": css,
        "titles": dict(titles or {}),
    }


def _cell(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_float(value, 3) if math.isfinite(value) or math.isnan(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(_cell(v)) for v in value) + "]"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def _num(value: Any, digits: int = 3, signed: bool = False) -> str:
    """A number with ``digits`` decimals (``+`` before a positive one with ``signed``); ``-``
    for ``None`` or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):+.{digits}f}" if signed else f"{float(value):.{digits}f}"


def _interval(ci: Any, digits: int = 3) -> str:
    """``[low, high]`` of a two-number interval, ``-`` without one."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return "-"
    return f"[{_num(ci[0], digits)}, {_num(ci[1], digits)}]"


def _p(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3g}"


def visible_whitespace(text: str) -> Markup:
    """``text`` escaped, with the whitespace a reader must see marked: each line break as ``↵``
    (the break itself kept), and spaces / tabs that end a line or the text as ``·`` / ``⇥``.

    The prompt's trailing space is part of what the model reads (``"A: "`` and ``"A:"`` end on
    different tokens, so the last-token state differs); an HTML page would otherwise hide it.
    """
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        body = line.rstrip(" \t")
        marks = "".join("·" if c == " " else "⇥" for c in line[len(body) :])
        part = escape(body)
        if marks:
            part += Markup('<span class="ws">{}</span>').format(marks)
        if i < len(lines) - 1:
            part += Markup('<span class="ws">↵</span>\n')
        out.append(part)
    return Markup("").join(out)


def _prompt_format(settings: Mapping[str, Any]) -> str:
    """The frame of the direction's prompts, ``{question}`` standing for the question."""
    from ..data import format_prompt
    from ..reading import CHAT_FORMAT, PLAIN_FORMAT

    made = settings.get("prompt_format")
    if made in (None, PLAIN_FORMAT):
        return format_prompt("{question}")
    if made == CHAT_FORMAT:
        return "<the model's chat template around {question}, with the generation prompt>"
    return str(made)


def _prompt_note(settings: Mapping[str, Any]) -> str:
    """Where the prompt frame below comes from, and where the state was read."""
    read = settings.get("read") or "last"
    if settings.get("prompt_format") is None:
        said = "The direction records no prompt format; lirefs' default frame (the paper's) is:"
    else:
        said = "Every prompt of the direction's data was framed as below;"
    return f"{said} the state is read at {read!r} (the last prompt token unless said otherwise)."


def transfer_base(transfer: TransferReport, direction: Direction) -> str:
    """The name under which ``transfer`` holds ``direction``: the one with its data hash, else
    (no hashes recorded) the transfer's first direction.

    Raises:
        MetadataMismatchError: ``transfer`` was made on another model, or holds no direction
            built from this direction's data.
    """
    model = transfer.metadata.get("model") or {}
    ours = direction.metadata.get("model") or {}
    if (
        model.get("fingerprint")
        and ours.get("fingerprint")
        and model["fingerprint"] != ours["fingerprint"]
    ):
        raise MetadataMismatchError(
            f"the transfer report ran on model {model.get('name')!r} (fingerprint "
            f"{model['fingerprint']}), but the direction is of {ours.get('name')!r} (fingerprint "
            f"{ours['fingerprint']}); give the transfer.json made with this direction"
        )
    recorded = (transfer.metadata.get("data") or {}).get("directions") or {}
    want = (direction.metadata.get("data") or {}).get("hash")
    hashes = {name: (recorded.get(name) or {}).get("hash") for name in transfer.directions}
    if want is None or not any(hashes.values()):
        return transfer.directions[0]
    for name, value in hashes.items():
        if value == want:
            return name
    raise MetadataMismatchError(
        f"the transfer report holds no direction built from this direction's data (hash {want}; "
        f"it has {', '.join(f'{k}: {v}' for k, v in hashes.items())}); give the transfer.json "
        "made with this direction"
    )


def transfer_sentence(transfer: TransferReport | None, base: str | None = None) -> str:
    """The summary's format-matched transfer line: the report's direction (``base``, by default
    the transfer's first) scored on each other test set, against that set's shuffled-label 95th
    percentile.

    A set such as ``builtin-matched`` frames reasoning and memory questions alike, so separating
    it is evidence that the direction reads more than the surface form of the two question sets;
    without a transfer the page says that this test is missing.
    """
    if transfer is None or not transfer.directions:
        return (
            "Not run for this report: without it the separation above may rest on the surface "
            "form of the two question sets (their wording, length, digits). `lirefs demo` runs it "
            "on builtin-matched, where both classes share one format; `lirefs report --transfer "
            "transfer.json` shows it here."
        )
    base = base or transfer.directions[0]
    others = [t for t in transfer.tests if t != base]
    if not others:
        return (
            f"The transfer report scores the direction {base!r} on no other set, so the "
            "format-matched test is missing; add a set such as builtin-matched."
        )
    parts = []
    for test in others:
        auc, p95 = transfer.auroc[base][test], transfer.shuffled_auroc_p95[base][test]
        p = transfer.permutation_p[base][test]
        verdict = (
            "it separates the format-matched set beyond chance"
            if transfer.above_chance(base, test)
            else "it does NOT separate the format-matched set beyond chance, so the separation "
            "above may rest on surface form"
        )
        text = (
            f"on {test} ({transfer.n_reasoning[test]} reasoning / {transfer.n_memory[test]} "
            f"memory held-out prompts), the {base} direction at layer {transfer.layer[base]} "
            f"reaches AUROC {format_float(auc, 3)} against {format_float(p95, 3)} at the 95th "
            f"percentile of shuffled labels (p = {format_float(p, 3)}): {verdict}"
        )
        if test in transfer.directions:
            text += (
                f" ({test}'s own direction reaches {format_float(transfer.auroc[test][test], 3)} "
                f"at its layer {transfer.layer[test]})"
            )
        parts.append(text)
    return "; ".join(parts)[:1].upper() + "; ".join(parts)[1:] + "."


def _model_line(report: LayerReport, direction: Direction) -> str:
    model = direction.metadata.get("model") or report.metadata.get("model") or {}
    return (
        f"model {model.get('name', '?')} (fingerprint {model.get('fingerprint', '?')}), "
        f"layers 0..{direction.n_layers}, d_model {direction.d_model}; "
        f"{report.n_reasoning} reasoning / {report.n_memory} memory held-out prompts"
    )


def _n_permutations(report: LayerReport) -> int | None:
    n = (report.metadata.get("settings") or {}).get("n_permutations")
    return int(n) if isinstance(n, (int, float)) and n > 0 else None


def _at_floor(report: LayerReport) -> list[bool]:
    """Per layer: whether the permutation p is at its floor ``1 / (n_permutations + 1)``, the
    smallest value that many shufflings can give (no shuffle reached the real AUROC)."""
    n = _n_permutations(report)
    if n is None:
        return [False] * len(report.permutation_p)
    floor = 1.0 / (n + 1)
    return [math.isfinite(p) and abs(p - floor) < 1e-12 for p in report.permutation_p]


def _layer_table(report: LayerReport) -> tuple[dict[str, Any], list[str]]:
    """The per-layer table with readable column names, and the notes of the columns folded out.

    A column is folded into a note when it is the same at every layer at this data size: a
    probe accuracy of 1.000 everywhere (the classes are linearly separable at every layer), a
    permutation p at its floor everywhere (no shuffle ever beat the real AUROC).
    """
    n_perm = _n_permutations(report)
    floor = _at_floor(report)
    finite_p = [f for f, p in zip(floor, report.permutation_p, strict=True) if math.isfinite(p)]
    fold_p = bool(finite_p) and all(finite_p)
    probe = [a for a in report.probe_accuracy if math.isfinite(a)]
    fold_probe = bool(probe) and min(probe) >= 0.9995
    notes = []
    if fold_p and n_perm is not None:
        notes.append(
            f"Permutation p is {1 / (n_perm + 1):.3g} = 1/({n_perm} + 1) at every layer: the "
            f"floor of {n_perm} label shufflings (no shuffle reached the real AUROC). It carries "
            "no information beyond that, so it is not a column; more shufflings lower the floor."
        )
    elif n_perm is not None and any(floor):
        notes.append(
            f"p marked ≤ is at its floor 1/({n_perm} + 1): {n_perm} shufflings cannot show a "
            "smaller p."
        )
    if fold_probe:
        notes.append(
            "Logistic-probe accuracy (cross-validated on the held-out prompts) is 1.000 at every "
            f"layer: {report.n_reasoning} + {report.n_memory} prompts in d_model dimensions are "
            "linearly separable anywhere, so it carries no information at this data size and is "
            "not a column."
        )
    rows = []
    for layer in range(report.n_layers + 1):
        row: dict[str, Any] = {
            "layer": f"{layer}{' *' if layer == report.best_layer else ''}",
            "AUROC": report.auroc[layer],
            "chance 95th pct": report.shuffled_auroc_p95[layer],
        }
        if not fold_p:
            p = format_float(report.permutation_p[layer], 3)
            row["permutation p"] = f"≤ {p}" if floor[layer] else p
        row["Cohen's d"] = format_float(report.effect_size[layer], 2)
        if report.probe_accuracy and not fold_probe:
            row["probe accuracy"] = report.probe_accuracy[layer]
        if report.length_matched_auroc:
            row["AUROC, length-matched"] = report.length_matched_auroc[layer]
        if report.train_auroc:
            row["AUROC, train half"] = report.train_auroc[layer]
        row["‖r‖"] = report.direction_norm[layer]
        row["cos to layer before"] = report.cos_prev[layer]
        rows.append(row)
    titles = {
        "AUROC": "held-out AUROC of the scores h·r̂ (reasoning = positive class)",
        "chance 95th pct": "95th percentile of the AUROC under shuffled labels",
        "AUROC, length-matched": "AUROC on the held-out pairs of matched prompt length",
        "AUROC, train half": "in-sample AUROC on the half the direction was built from",
    }
    return _table(rows, ("layer",), report.best_layer, titles=titles), notes


def _baseline_table(report: LayerReport) -> dict[str, Any]:
    b = report.best_layer
    n_perm = _n_permutations(report) or "?"
    p = format_float(report.permutation_p[b], 3)
    rows: list[dict[str, Any]] = [
        {"baseline": f"held-out AUROC at layer {b}", "value": report.auroc[b]},
        {
            "baseline": f"shuffled labels ({n_perm} shufflings): mean / 5th / 95th percentile",
            "value": [
                report.shuffled_auroc[b],
                report.shuffled_auroc_p5[b],
                report.shuffled_auroc_p95[b],
            ],
        },
        {
            "baseline": "permutation p-value"
            + (f" (at its floor 1/({n_perm} + 1))" if _at_floor(report)[b] else ""),
            "value": p,
        },
        {
            "baseline": "prompt length alone (better orientation / longer = reasoning)",
            "value": None
            if report.length_auroc is None
            else [report.length_auroc, report.length_auroc_oriented],
        },
        {"baseline": "length-matched pairs", "value": report.length_matched_pairs},
        {
            "baseline": f"length-matched subset: AUROC at layer {b} / its shuffled 95th pct",
            "value": [report.length_matched_auroc[b], report.length_matched_shuffled_p95[b]]
            if report.length_matched_auroc
            else None,
        },
        {
            "baseline": "length alone on the matched subset (near 0.5 = matching worked)",
            "value": report.length_matched_length_auroc,
        },
    ]
    if report.train_auroc:
        rows.append(
            {"baseline": f"in-sample train AUROC at layer {b}", "value": report.train_auroc[b]}
        )
    return _table(rows, ("baseline",))


def _transfer_context(transfer: TransferReport, figures: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "matrix": _table(transfer.table_rows(), ("direction",)),
        "baselines": _table(transfer.baseline_rows(), ("test",)),
        "lines": transfer.summary().split("\n"),
        "figures": figures,
    }


def _evaluation_context(summary: EvaluationSummary, figures: list[dict[str, str]]) -> dict:
    """What the template shows of one evaluation: its header, the table per alpha, the notes,
    example generations, prompt baselines, groups, calibration and plots."""
    result = summary.result
    settings = result["metadata"].get("settings") or {}
    how = (
        f"steered at layer {settings.get('layer')} ({settings.get('layer_source', '?')}), mode "
        f"{settings.get('mode', '?')}"
        if summary.direction is not None
        else "unsteered (no direction)"
    )
    # one continuous outcome per benchmark: the answer after the model's own working where the
    # exemplars show working, else the gold text right after the prompt
    outcome = result.get("outcome") or "gold_logprob"
    what = {
        "answer_logprob": "answer log-prob: log p(answer | prompt + the model's own output up to "
        f"{settings.get('answer_marker')!r}) in nats, over the items whose output reached it "
        "(n); its change vs α = 0 uses the items with a value at both alphas",
        "gold_logprob": "gold log-prob: log p(gold text | prompt) in nats, teacher-forced right "
        "after the prompt",
    }[outcome]
    notes = []
    survivors = result.get("holm_survivors")
    if survivors is not None:
        said = "; ".join(survivors) if survivors else "none"
        notes.append(f"Effects that survive Holm correction at 0.05 (p_holm <= 0.05): {said}")
    examples = _examples(summary)
    return {
        "header": f"{result.get('benchmark', '?')}: {result.get('n_items', '?')} items, {how}; "
        f"from {summary.folder}",
        "outcome_note": "Accuracy: the benchmark's answer phrase (strict); flexible: \\boxed{} "
        "or the last number / letter. Intervals: 95% exact (Clopper-Pearson) for accuracy, "
        "for changes the exact interval given the items that changed (the McNemar test's); "
        "p: exact McNemar against α = 0 with Holm's adjustment. " + what + ".",
        "main": _evaluation_table(result["results"], outcome),
        "notes": notes,
        "examples": examples,
        "examples_note": f"The first {len(examples)} items, the same at every α; outputs cut at "
        f"{EXAMPLE_CHARS} characters. From records.jsonl.",
        "baselines": _baseline_rows(result),
        "groups": _group_table(result),
        "calibration": _calibration(settings.get("calibration")),
        "figures": figures,
    }


def _evaluation_table(results: Sequence[Mapping[str, Any]], outcome: str) -> dict[str, Any]:
    """One row per alpha with readable columns: accuracy (k/n), its interval, the change against
    alpha 0 with its interval and p, flexible accuracy, no answer, degenerate, the outcome."""
    name = "answer log-prob" if outcome == "answer_logprob" else "gold log-prob"
    has_outcome = any(r.get(outcome) is not None for r in results)
    has_degenerate = any(r.get("degenerate") is not None for r in results)
    rows = []
    for r in results:
        n = r.get("n") or 0
        paired = r.get("paired") if isinstance(r.get("paired"), Mapping) else None
        row: dict[str, Any] = {
            "α": f"{float(r['alpha']):g}",
            "accuracy": f"{_num(r.get('accuracy'))} ({r.get('n_correct', '?')}/{n})",
            "95% interval": _interval(r.get("ci")),
            "change vs α=0": "reference" if paired is None and float(r["alpha"]) == 0 else "-",
            "p vs α=0 (Holm)": "-",
            "flexible accuracy": _num(r.get("flexible_accuracy")),
            "no answer": f"{r.get('n_no_answer', '?')}/{n}",
        }
        if paired is not None:
            row["change vs α=0"] = (
                f"{_num(paired.get('diff'), signed=True)} {_interval(paired.get('ci'))}"
            )
            row["p vs α=0 (Holm)"] = f"{_p(paired.get('p_value'))} ({_p(paired.get('p_holm'))})"
        if has_degenerate:
            row["degenerate"] = f"{r.get('n_degenerate', '?')}/{n}"
        if has_outcome:
            value = (
                "-"
                if r.get(outcome) is None
                else f"{_num(r.get(outcome), 2)} {_interval(r.get(outcome + '_ci'), 2)}"
            )
            if outcome == "answer_logprob" and r.get("answer_logprob_n") is not None:
                value += f" (n={r['answer_logprob_n']})"
            row[name] = value
            test = r.get(outcome + "_paired")
            row[f"{name} change (p)"] = (
                f"{_num(test.get('diff'), 2, signed=True)} ({_p(test.get('p_value'))})"
                if isinstance(test, Mapping)
                else "-"
            )
        rows.append(row)
    titles = {
        "accuracy": "share correct, strict reading (correct / items)",
        "95% interval": "exact Clopper-Pearson interval of the accuracy",
        "change vs α=0": "accuracy minus that at α = 0 on the same items, 95% paired interval",
        "p vs α=0 (Holm)": "exact McNemar p-value, Holm-adjusted in brackets",
        "no answer": "outputs with no extractable answer (counted wrong)",
        "degenerate": "outputs flagged degenerate (repetition, empty...)",
    }
    return _table(rows, ("α",), titles=titles, css="eval")


def _examples(summary: EvaluationSummary) -> list[dict[str, Any]]:
    """``EXAMPLE_ITEMS`` items of the evaluation's records (the first at the first alpha), each
    with its prompt's last part and its output at every alpha."""
    evaluation = summary.evaluation
    records = list(getattr(evaluation, "records", None) or [])
    alphas = list(summary.result.get("alphas") or [])
    if not records or not alphas:
        return []
    by_key = {(float(r["alpha"]), int(r["index"])): r for r in records}
    first = [int(r["index"]) for r in records if float(r["alpha"]) == float(alphas[0])]
    out = []
    for index in first[:EXAMPLE_ITEMS]:
        head = by_key[(float(alphas[0]), index)]
        prompt = str(head.get("prompt") or "")
        out.append(
            {
                "index": index,
                "gold": head.get("gold"),
                "prompt": visible_whitespace(prompt.split("\n\n")[-1]),
                "generations": [
                    _generation(float(a), by_key.get((float(a), index))) for a in alphas
                ],
            }
        )
    return out


def _generation(alpha: float, record: Mapping[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {"alpha": f"{alpha:g}", "extracted": "(not run)", "correct": False, "output": ""}
    text = str(record.get("output") or "")
    if len(text) > EXAMPLE_CHARS:
        text = text[:EXAMPLE_CHARS] + "…"
    extracted = record.get("extracted")
    return {
        "alpha": f"{alpha:g}",
        "extracted": "(none)" if extracted is None else str(extracted),
        "correct": bool(record.get("correct")),
        "output": text,
    }


def _baseline_rows(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The prompt baselines (unsteered rows with a text added to each question), or ``None``."""
    baselines = [b for b in result.get("prompt_baselines") or [] if isinstance(b, Mapping)]
    if not baselines:
        return None
    rows = []
    for b in baselines:
        test = (b.get("tests") or {}).get("accuracy") or {}
        n = b.get("n") or 0
        rows.append(
            {
                "prompt baseline": b.get("label"),
                "accuracy": f"{_num(b.get('accuracy'))} ({b.get('n_correct', '?')}/{n})",
                "95% interval": _interval(b.get("ci")),
                "no answer": f"{b.get('n_no_answer', '?')}/{n}",
                "change vs α=0": f"{_num(test.get('diff'), signed=True)} {_interval(test.get('ci'))}"
                if test
                else "-",
                "p vs α=0 (Holm)": f"{_p(test.get('p_value'))} ({_p(test.get('p_holm'))})"
                if test
                else "-",
            }
        )
    return _table(rows, ("prompt baseline",))


def _calibration(cal: Any) -> dict[str, Any] | None:
    """The calibration an evaluation ran with (``lirefs evaluate --calibration``): its file,
    budget, bounds, the alphas judged within the budget, and the damage / feature-shift table of
    the points it tried; ``None`` for a run without one."""
    if not isinstance(cal, Mapping):
        return None
    lines = [
        f"Calibration {cal.get('path', '?')} (sha256 {cal.get('hash', '?')}): budget mean "
        f"next-token KL <= {_cell(cal.get('budget'))}, alpha_min {_cell(cal.get('alpha_min'))}, "
        f"alpha_max {_cell(cal.get('alpha_max'))} (mode {cal.get('mode', '?')}, layer "
        f"{cal.get('layer', '?')})"
    ]
    tables = []
    names = cal.get("resolved")
    if isinstance(names, Mapping) and names:
        lines.append(
            "alphas given by name: " + ", ".join(f"{k} = {_cell(v)}" for k, v in names.items())
        )
    within = cal.get("within_budget")
    if isinstance(within, Mapping) and within:
        tables.append(
            _table([{"α": k, "within budget": "?" if v is None else v} for k, v in within.items()])
        )
    points = cal.get("points")
    if isinstance(points, list) and points:
        keys = {
            "alpha": "α",
            "kl": "mean KL",
            "ppl_ratio": "perplexity ratio",
            "shift_reasoning": "shift, reasoning",
            "shift_memory": "shift, memory",
            "within": "within budget",
            "stage": "stage",
        }
        tables.append(
            _table(
                [{v: p.get(k) for k, v in keys.items()} for p in points if isinstance(p, Mapping)]
            )
        )
    return {"lines": lines, "tables": tables}


def _group_table(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The per-group table (accuracy, exact CI, n, paired test against alpha 0 with raw and
    Holm p) when the evaluation has more than one group."""
    by_group = result.get("by_group") or {}
    names = {name for groups in by_group.values() for name in groups}
    if len(names) < 2:
        return None
    rows = []
    for key, groups in by_group.items():
        for name, g in groups.items():
            paired = g.get("paired") or {}
            rows.append(
                {
                    "α": f"{float(key):g}",
                    "group": name,
                    "items": g.get("n"),
                    "accuracy": g.get("accuracy"),
                    "95% interval": _interval(g.get("ci")),
                    "change vs α=0": _num(paired.get("diff"), signed=True) if paired else "-",
                    "p": _p(paired.get("p_value")) if paired else "-",
                    "p (Holm)": _p(paired.get("p_holm")) if paired else "-",
                }
            )
    return _table(rows, ("α", "group"))


def _metadata_table(
    report: LayerReport, direction: Direction, transfer: TransferReport | None
) -> dict[str, Any]:
    d_meta = direction.metadata
    r_meta = report.metadata
    model = d_meta.get("model") or {}
    rows: list[dict[str, Any]] = [
        {"field": "lirefs version (report)", "value": r_meta.get("lirefs_version")},
        {"field": "lirefs version (direction)", "value": d_meta.get("lirefs_version")},
        {"field": "layer convention", "value": r_meta.get("layer_convention")},
        {"field": "report created", "value": r_meta.get("created")},
    ]
    rows += [{"field": f"model.{k}", "value": v} for k, v in model.items()]
    rows += [
        {"field": f"direction data.{k}", "value": v} for k, v in (d_meta.get("data") or {}).items()
    ]
    rows += [
        {"field": f"direction settings.{k}", "value": v}
        for k, v in (d_meta.get("settings") or {}).items()
    ]
    rows += [
        {"field": f"report data.{k}", "value": v}
        for k, v in (r_meta.get("data") or {}).items()
        if k != "direction_data"
    ]
    rows += [
        {"field": f"report settings.{k}", "value": v}
        for k, v in (r_meta.get("settings") or {}).items()
    ]
    if transfer is not None:
        rows += [
            {"field": f"transfer settings.{k}", "value": v}
            for k, v in (transfer.metadata.get("settings") or {}).items()
        ]
    return _table(rows, ("field", "value"), css="meta")
