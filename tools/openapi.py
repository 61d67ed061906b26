"""Print the OpenAPI document the code generates, or check a committed copy against it."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", type=Path, help="fail when this file differs from the generated document")
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from devstack.openapi import build_openapi, render

    text = render(build_openapi())
    if args.check is None:
        sys.stdout.write(text)
        return 0
    committed = args.check.read_text() if args.check.exists() else ""
    if committed == text:
        print(f"openapi: {args.check} matches the code")
        return 0
    diff = difflib.unified_diff(committed.splitlines(), text.splitlines(), str(args.check), "generated", lineterm="")
    print("\n".join(list(diff)[:80]), file=sys.stderr)
    print(f"openapi: {args.check} is stale; run `make openapi` and commit it", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
