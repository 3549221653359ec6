"""The development tool `extension/package.py`, loaded by path for the tests.

It lives beside the extension, not in the installed package (it needs a checkout), so it is
not importable by name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "extension" / "package.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cm_extension_package", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


packaging = sys.modules.get("cm_extension_package") or _load()
