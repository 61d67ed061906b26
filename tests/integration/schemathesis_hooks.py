"""Schemathesis hooks for tests/integration/test_schemathesis.py (loaded by the CLI through SCHEMATHESIS_HOOKS).

A generated client registration is valid by the schema yet almost never by the rules the schema cannot say
(a phone number that exists, unused in the book): the positive cases of ``POST /clients`` get a fresh valid
phone and no email, so they create clients and the stateful phase follows the links from there. Negative
cases are left as generated.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import schemathesis
from schemathesis.generation import GenerationMode

_numbers = itertools.count()
_BLOCK = int(os.environ.get("SCHEMATHESIS_PHONE_BLOCK", str(os.getpid() % 700)))


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    meta = getattr(case, "_meta", None)
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE or not isinstance(case.body, dict):
        return
    if case.operation.method.upper() == "POST" and case.operation.path == "/clients":
        n = next(_numbers)
        case.body["phone"] = f"+1 650 {200 + (_BLOCK + n // 10000) % 700:03d} {n % 10000:04d}"
        case.body.pop("email", None)
