"""The ``lirefs`` command line: a thin layer over the Python API.

Each sub-command lives in its own module of this package and exposes ``command`` (a click command);
``COMMANDS`` lists the modules in the order ``lirefs --help`` shows them.
"""

from __future__ import annotations

import importlib

import click

from ._common import CONTEXT_SETTINGS, OneLineGroup

__all__ = ["main"]

COMMANDS: list[str] = [
    "demo",
    "collect",
    "direction",
    "report",
    "transfer",
    "steer",
    "calibrate",
    "evaluate",
    "export",
]


@click.group(cls=OneLineGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="lirefs")
def main() -> None:
    """Find, analyse and steer the Linear Reasoning Features (LiReFs) of language models.

    \b
    Quick start (offline, SmolLM2-135M, built-in data):
      lirefs demo
    The paper's pipeline step by step:
      lirefs collect --set builtin --out acts.safetensors
      lirefs direction acts.safetensors --out liref.safetensors
      lirefs report liref.safetensors acts.safetensors --out report/
    """


for _name in COMMANDS:
    main.add_command(importlib.import_module(f"{__name__}.{_name}").command)
