"""``python tests/fake_cli.py ARGS...``: the ``facerec`` command with the test suite's fake detector
and embedder registered (``--embedder fake --detector fake``), in its own process, so a test can
run it with packages made unimportable (tests/without/sitecustomize.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from facerec.cli import main  # noqa: E402

import conftest  # noqa: E402,F401 - registers the fake detector and embedder

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
