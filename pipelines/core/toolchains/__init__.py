"""One module per toolchain, each defining ``TOOLCHAIN``; found by listing this package.

Adding a toolchain is a ``docker/<name>/`` folder plus a module ``<name>.py`` here.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from pipelines.core.toolchain import Toolchain


@functools.cache
def registry() -> dict[str, Toolchain]:
    found: dict[str, Toolchain] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        toolchain = importlib.import_module(f"{__name__}.{info.name}").TOOLCHAIN
        if toolchain.name != info.name:
            raise RuntimeError(f"{info.name}.py defines the toolchain {toolchain.name!r}; the names must agree")
        found[toolchain.name] = toolchain
    return found


def get(name: str) -> Toolchain:
    return registry()[name]


def target_toolchains() -> list[str]:
    """Toolchains a recipe target may name."""
    return [name for name, t in registry().items() if t.target_fields is not None]
