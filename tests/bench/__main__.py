"""``python -m tests.bench``: the same as ``python tests/bench/run.py``."""

from tests.bench.run import main

if __name__ == "__main__":
    main()
