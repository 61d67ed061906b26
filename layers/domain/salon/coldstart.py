"""Start-up of a function: the cyclic garbage collector rests while the handler's modules load.

Loading a handler creates a few hundred thousand objects that live as long as the
process (modules, functions, classes, pydantic and pynamodb models, compiled
patterns). With the collector on, every sweep it makes during the load walks all of
them again, and none of them is garbage: about a tenth of the cold start on this
code (``make bench``, cold_start). So every handler module starts with
``gc.disable()`` and ends with :func:`loaded`, which moves what was loaded into the
permanent generation (``gc.freeze()``: later collections during requests skip it as
well) and turns the collector back on.
"""

from __future__ import annotations

import gc


def loaded() -> None:
    """The handler is built: keep its objects out of every later collection and collect again."""
    gc.freeze()
    gc.enable()
