"""``python -m lirefs.cli``: the same as the ``lirefs`` console script."""

from . import main

main()
