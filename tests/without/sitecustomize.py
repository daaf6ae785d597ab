"""Makes the packages named in $FACEREC_WITHOUT (comma-separated) unimportable, as if not installed.

Put this folder first on PYTHONPATH to try the core install's behaviour inside a full virtualenv:

    PYTHONPATH=tests/without FACEREC_WITHOUT=torch,torchvision,facenet_pytorch facerec ...

CI also checks a real core-only virtualenv (.ci/run); this is the quick way during development.
"""

import importlib.abc
import os
import sys

_BLOCKED = {name.strip() for name in os.environ.get("FACEREC_WITHOUT", "").split(",") if name.strip()}


class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


if _BLOCKED:
    sys.meta_path.insert(0, _Absent())
