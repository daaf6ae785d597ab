#!/usr/bin/env bash
# The core install, checked as a user gets it (#32): a fresh virtualenv, `pip install .` (no extra),
# then no torch importable, its size, `make demo` in it, and the core test selection. A module of
# the core that imports an optional part (torch, fastapi, av, ...) fails here.
# Usage: scripts/core_check.sh [VENV]   (default .ci-cache/core-venv; rebuilt each time)
set -euo pipefail
cd "$(dirname "$0")/.."
CORE="${1:-.ci-cache/core-venv}"
PYTHON="${PYTHON:-python3}"
rm -rf "$CORE"
start=$(date +%s)
"$PYTHON" -m venv "$CORE"
"$CORE/bin/pip" install -q -c constraints.txt .
echo "core install: pip install . took $(( $(date +%s) - start )) s; venv $(du -sh "$CORE" | cut -f1)"
for optional in torch torchvision facenet_pytorch fastapi av pymilvus ray dlib; do
  if "$CORE/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$optional') is None)"; then
    echo "error: the core install has $optional; it belongs in an extra (pyproject.toml)" >&2
    exit 1
  fi
done
# the test runner only (not the test extra, which would bring Milvus and Selenium)
"$CORE/bin/pip" install -q -c constraints.txt pytest httpx
touch "$CORE/.core"  # make: the core is installed (non-editable, as a user has it)
make demo VENV="$CORE"
# The core selection: the files below hold the tests marked `core` (their modules import no
# optional part). pytest puts tests/ on the path, not src/: `import facerec` is the installed package.
"$CORE/bin/python" -m pytest -q -rfEs -p no:cacheprovider -m core \
  tests/unit/test_extras.py tests/integration/test_core_install.py
