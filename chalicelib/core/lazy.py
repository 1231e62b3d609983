"""A route family's module, imported on its first use.

app.py registers every route at import (Chalice and ``chalice package`` need the whole
table), but a cold ``GET /put-url`` should import only what it runs: the multipart,
Companion, status and verifier modules are bound with :func:`lazy` and imported when a
route first touches one of their names. Code that imports them normally (tests, the
verifier, other families) is unaffected; the type checker sees the real modules::

    if TYPE_CHECKING:
        from chalicelib.multipart import companion
    else:
        companion = lazy("chalicelib.multipart.companion")

The import runs under Python's import lock, so two first requests on two threads
(``chalice local``) get the same, fully initialised module.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for a module: reading a name from it imports the module (once; after that,
    a lookup in ``sys.modules``) and reads the name there, so a test's monkeypatch of the
    real module is seen too."""

    def __init__(self, name: str) -> None:
        self.__name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") or attribute.startswith("_LazyModule"):
            raise AttributeError(attribute)  # copy, pickle, or a half-built instance
        return getattr(self.module(), attribute)

    def module(self) -> ModuleType:
        """The module itself, imported if it was not yet."""
        return importlib.import_module(self.__name)

    def __repr__(self) -> str:
        return f"<lazy module {self.__name!r}>"


def lazy(name: str) -> Any:
    """``name`` (a dotted module path), imported when one of its names is first read."""
    return LazyModule(name)
