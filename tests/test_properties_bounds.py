"""Property-based tests of the bounds on foreign input (hypothesis).

* ``import_gguf``: any block index, width, value and metadata text either loads a direction that
  matches the file or is one ``DirectionError`` line; nothing larger than the bounds is allocated.
* the ``--eval`` loader: any JSON document (nesting up to far beyond ``MAX_JSON_DEPTH``) loads or
  is one ``DataError`` line.
* the HTML page: any metadata string appears only escaped.
* the index and alpha parsers: any text is a list within ``MAX_INDICES`` or one ``DataError``.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lirefs
from lirefs.cli._common import MAX_INDICES, parse_alpha_list, parse_index_list
from lirefs.errors import DataError, DirectionError, LirefsError
from lirefs.export import MAX_GGUF_BLOCKS
from lirefs.store import LAYER_CONVENTION, MAX_JSON_DEPTH


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def _write_gguf(path: Path, rows: dict[int, np.ndarray], meta: str | None) -> Path:
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "controlvector")
    if meta is not None:
        writer.add_string("lirefs.metadata", meta)
    for block, values in rows.items():
        writer.add_tensor(f"direction.{block}", values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


_values = st.floats(width=32, allow_nan=True, allow_infinity=True)
_meta = st.one_of(
    st.none(),
    st.text(max_size=50),
    st.integers(0, 3 * MAX_JSON_DEPTH).map(lambda d: "[" * d + "]" * d),
    st.integers(-5, 3 * MAX_GGUF_BLOCKS).map(
        lambda n: json.dumps({"layer_convention": LAYER_CONVENTION, "model": {"n_layers": n}})
    ),
)


@_settings(60)
@given(
    blocks=st.lists(st.integers(0, 4 * MAX_GGUF_BLOCKS), min_size=1, max_size=3, unique=True),
    width=st.integers(0, 6),
    values=st.lists(_values, min_size=6, max_size=6),
    meta=_meta,
)
def test_import_gguf_loads_what_the_file_holds_or_says_why(
    tmp_path_factory: pytest.TempPathFactory,
    blocks: list[int],
    width: int,
    values: list[float],
    meta: str | None,
) -> None:
    row = np.array(values[:width], dtype=np.float32)
    path = _write_gguf(tmp_path_factory.mktemp("g") / "v.gguf", {b: row for b in blocks}, meta)
    try:
        liref = lirefs.import_gguf(path)
    except DirectionError as exc:
        assert "\n" not in str(exc)
        return
    assert width >= 1 and bool(np.isfinite(row).all())
    assert max(blocks) < MAX_GGUF_BLOCKS and liref.n_layers <= MAX_GGUF_BLOCKS
    for b in blocks:
        assert torch.equal(liref.vectors[b + 1], torch.from_numpy(row).to(torch.float64))


def _result(metadata: Any) -> str:
    return json.dumps({"benchmark": "x", "results": [], "metadata": metadata})


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@_settings(60)
@given(
    doc=st.one_of(
        _json.map(json.dumps),
        _json.map(_result),
        st.integers(0, 4 * MAX_JSON_DEPTH).map(lambda d: _result("[" * d + "]" * d)),
        st.integers(0, 100_000).map(lambda d: '{"a":' * d + "1" + "}" * d),
        st.text(max_size=40),
    )
)
def test_the_eval_loader_loads_or_refuses_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, doc: str
) -> None:
    from lirefs.analysis.html import load_evaluation

    folder = tmp_path_factory.mktemp("e")
    (folder / "result.json").write_text(doc, encoding="utf-8")
    try:
        load_evaluation(folder)
    except LirefsError as exc:
        assert "\n" not in str(exc)


@pytest.fixture(scope="module")
def page_parts() -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    r, m = torch.randn(12, 4, 8, generator=g), torch.randn(12, 4, 8, generator=g)
    r[:, :, 0] += 2.0
    model = {"name": "toy", "fingerprint": "fp", "n_layers": 3, "d_model": 8}
    direction = lirefs.Direction.from_activations(r, m, model=model, data={"hash": "h"})
    report = lirefs.layer_report(direction, r, m, n_permutations=5)
    return {"direction": direction, "report": report}


_plain = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)


@_settings(40)
@given(
    inner=st.tuples(_plain, st.sampled_from("<>&"), _plain).map("".join),
)
def test_any_metadata_string_appears_only_escaped_in_the_page(
    tmp_path_factory: pytest.TempPathFactory, page_parts: dict[str, Any], inner: str
) -> None:
    from lirefs.analysis.html import write_html_report

    text = f"QX{inner}XQ"  # marked, so the raw text cannot match the page's own markup

    direction = page_parts["direction"]
    saved = json.loads(json.dumps(direction.metadata))
    direction.metadata["settings"]["note"] = text
    direction.metadata["data"]["source"] = text
    try:
        page = write_html_report(
            tmp_path_factory.mktemp("h") / "r.html", page_parts["report"], direction, title=text
        ).read_text(encoding="utf-8")
    finally:
        direction.metadata.clear()
        direction.metadata.update(saved)
    from markupsafe import escape  # jinja2's autoescape: quotes as &#34; / &#39;

    escaped = {html.escape(text), html.escape(text, quote=False), str(escape(text))}
    assert any(e in page for e in escaped)
    assert text not in page


_index_text = st.one_of(
    st.text(max_size=20),
    st.tuples(st.integers(-10, 10**15), st.integers(-10, 10**15)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.lists(st.integers(-5, 2 * MAX_INDICES), max_size=50).map(lambda xs: ",".join(map(str, xs))),
    st.integers(0, 10**6).map(lambda n: ",".join(["1"] * n) if n < 20_000 else "1," * n),
)


@_settings(200)
@given(text=_index_text)
def test_index_parser_is_bounded(text: str) -> None:
    try:
        out = parse_index_list(text, "--layers", "15, 10-20 or 3,4,5", "residual indices")
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    assert out is not None and len(out) <= MAX_INDICES + 1
    assert all(0 <= i <= MAX_INDICES for i in out)


@_settings(200)
@given(values=st.lists(st.text(max_size=20) | st.floats().map(repr), max_size=4))
def test_alpha_parser_gives_finite_numbers_or_one_line(values: list[str]) -> None:
    try:
        alphas = parse_alpha_list(tuple(values))
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    assert all(math.isfinite(a) for a in alphas)
