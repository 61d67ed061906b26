"""Start-up of a function: the cyclic garbage collector rests while the handler's modules load.

Loading a handler creates a few hundred thousand objects that live as long as the
process (modules, functions, classes, pydantic and pynamodb models, compiled
patterns). With the collector on, every sweep it makes during the load walks all of
them again, and none of them is garbage: about a tenth of the cold start on this
code (``make bench``, cold_start). So every handler module starts with
``gc.disable()`` and ends with :func:`loaded`, which moves what was loaded into the
permanent generation (``gc.freeze()``: later collections during requests skip it as
well) and turns the collector back on.

Before anything else a handler calls :func:`starting`: Powertools' ``event_handler``
and ``data_classes`` packages import every resolver and every event class in their
``__init__`` (AppSync's pulls in asyncio), where a function uses one resolver and a
few events. Those packages are loaded without running their ``__init__``: each name
it would import is imported from its own module when first asked for, so every
import of them works as before and only what is used loads.
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.util
import sys
from typing import Any

# Packages whose __init__ only re-exports names of their own modules.
NARROWED = ("aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.data_classes")


def starting() -> None:
    """First thing in a handler module: the packages of ``NARROWED`` load only the modules asked for."""
    for name in NARROWED:
        lazy_package(name)


def lazy_package(name: str) -> bool:
    """Put package ``name`` in ``sys.modules`` without running its ``__init__``; each name the ``__init__``
    imports is imported from its module on first use (PEP 562 ``__getattr__``), and submodules import as
    ever. An ``__init__`` doing anything but imports, a docstring and ``__all__`` is left to load normally;
    so is a package already imported. Whether the package was narrowed."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        return False
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    home: dict[str, tuple[str, str]] = {}  # exported name -> (module it is imported from, its name there)
    exported: list[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(name.split(".")[: len(name.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                if alias.name == "*":
                    return False
                home[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        elif isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]:
            exported = list(ast.literal_eval(node.value))
        else:
            return False
    module = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:  # noqa: N807 - the module attribute hook's name
        if attr in home:
            origin, original = home[attr]
            imported = importlib.import_module(origin)
            try:
                value = getattr(imported, original)
            except AttributeError:  # ``from .package import module``
                value = importlib.import_module(f"{origin}.{original}")
        else:
            try:
                value = importlib.import_module(f"{name}.{attr}")
            except ModuleNotFoundError:
                raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None
        setattr(module, attr, value)
        return value

    setattr(module, "__getattr__", __getattr__)  # noqa: B010 - a module's attribute hook, not a method
    if exported is not None:
        setattr(module, "__all__", exported)  # noqa: B010
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return True


def loaded() -> None:
    """The handler is built: keep its objects out of every later collection and collect again."""
    gc.freeze()
    gc.enable()
