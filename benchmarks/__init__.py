"""lirefs performance suite: ratios measured side by side in one run (not timed tests).

Run everything with ``python -m benchmarks`` (writes ``benchmarks/results/*.json`` and regenerates
``docs/benchmarks.md``), or one part with ``python -m benchmarks.collect`` etc.
"""
