"""Writes that fail for the file system's sake (full disk) are OSErrors naming the file.

The CLI reports an ``OSError`` in one line with a hint (``free some disk space``); a library's own
error type for the same failure used to reach it as "unexpected". Injected, not by filling a disk.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest


def test_the_builtin_model_cache_on_a_full_disk_is_an_os_error(
    make_tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors
    import transformers

    from lirefs import models

    tiny = make_tiny("llama")
    hf, tok = tiny._module, tiny.tokenizer

    def full(*args: Any, **kwargs: Any) -> None:
        raise safetensors.SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: hf)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: tok)
    monkeypatch.setattr(type(hf), "save_pretrained", full)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    target = tmp_path / "cache" / "m-0123"
    with pytest.raises(OSError) as info:
        models._dequantize_gguf(gguf, target)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_write_error_without_a_file_is_given_one() -> None:
    from lirefs.store import os_error_of

    bare = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    named = os_error_of(bare, "/x/out.bin")
    assert named is not None and named.filename == "/x/out.bin"
    assert os_error_of(ValueError("unrelated"), "/x") is None
    assert os_error_of(OSError(errno.ENOENT, "gone", "/y"), "/x") is None  # already named
