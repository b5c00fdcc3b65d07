"""The scale benchmark (issue 5), run on demand: ``python -m tests.bench`` or ``tests/bench/run.py``.

Nothing here is named ``test_*``, so pytest never collects it; tests/test_bench_smoke.py runs
it at a tiny size to keep its code paths working.
"""
