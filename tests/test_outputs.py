"""Output folders never mix two runs: foreign folders are refused, lirefs' own are replaced whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lirefs.outputs import (
    MANIFEST,
    OutputFolderError,
    check_output_folder,
    output_folder,
    read_manifest,
)


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def test_a_new_folder_gets_the_files_and_a_manifest(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with output_folder(out, "report") as staging:
        _write(staging.path, {"report.json": "{}", "plots/a.png": "png"})
        assert staging.final(staging.path / "plots/a.png") == out / "plots/a.png"
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["kind"] == "report"
    assert manifest["files"] == ["plots/a.png", "report.json"]
    assert isinstance(manifest["lirefs_version"], str)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary left


def test_a_rerun_replaces_the_old_files_as_one_unit(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    with output_folder(out, "demo") as staging:
        _write(staging.path, {"report.json": "1", "transfer.json": "old", "layer_3.png": "x"})
    with output_folder(out, "demo") as staging:
        _write(staging.path, {"report.json": "2", "layer_5.png": "y"})
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "layer_5.png", "report.json"]
    assert (out / "report.json").read_text() == "2"
    assert read_manifest(out)["files"] == ["layer_5.png", "report.json"]  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_a_crash_leaves_the_earlier_run_intact(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    with output_folder(out, "demo") as staging:
        _write(staging.path, {"report.json": "1"})
    with pytest.raises(RuntimeError), output_folder(out, "demo") as staging:
        _write(staging.path, {"report.json": "2"})
        raise RuntimeError("killed half way")
    assert (out / "report.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_a_foreign_non_empty_folder_is_refused_before_the_body_runs(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    _write(out, {"notes.txt": "my own file"})
    ran = []
    refused = pytest.raises(OutputFolderError, match="holds files lirefs did not write")
    with refused, output_folder(out, "demo"):
        ran.append(True)
    assert ran == []
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_another_kind_of_lirefs_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    with output_folder(out, "demo") as staging:
        _write(staging.path, {"direction.safetensors": "d"})
    with pytest.raises(OutputFolderError, match="outputs of lirefs demo, not report"):
        check_output_folder(out, "report")


def test_an_empty_existing_folder_is_kept_and_filled(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    inode = out.stat().st_ino
    with output_folder(out, "transfer") as staging:
        _write(staging.path, {"transfer.json": "{}"})
    assert out.stat().st_ino == inode
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "transfer.json"]


def test_a_folder_from_before_manifests_is_recognised_by_its_lirefs_file(tmp_path: Path) -> None:
    out = tmp_path / "old-demo"
    _write(out, {"report.json": '{"metadata": {"lirefs_version": "0.1"}}', "stale.png": "x"})
    assert check_output_folder(out, "demo") is True
    with output_folder(out, "demo") as staging:
        _write(staging.path, {"report.json": "{}"})
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "report.json"]
    plain = tmp_path / "plain"
    _write(plain, {"report.json": '{"not": "lirefs"}'})
    with pytest.raises(OutputFolderError):
        check_output_folder(plain, "demo")


def test_keep_carries_a_file_of_the_earlier_run(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    with output_folder(out, "evaluation") as staging:
        _write(staging.path, {"records.jsonl": "r1\n", "dose_response.png": "old"})
    (out / "records.jsonl").write_text("r1\nr2\n")  # the run appended to it in place
    with output_folder(out, "evaluation", keep=("records.jsonl",)) as staging:
        _write(staging.path, {"result.json": "{}"})
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "records.jsonl", "result.json"]
    assert (out / "records.jsonl").read_text() == "r1\nr2\n"


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(NotADirectoryError):
        check_output_folder(out, "demo")


def test_a_file_added_to_a_lirefs_folder_is_not_deleted_by_a_rerun(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    with output_folder(out, "demo") as staging:
        _write(staging.path, {"report.json": "1"})
    _write(out, {"liref.gguf": "an export of the old direction"})
    with pytest.raises(OutputFolderError, match=r"did not write \(liref.gguf\); move them out"):
        check_output_folder(out, "demo")
    assert (out / "liref.gguf").exists()
