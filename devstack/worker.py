"""One Lambda execution environment: a process that loads one function and runs one invocation at a time.

Started by ``devstack.workers.WorkerPool`` as ``python -m devstack.worker <fd>`` with the stack's
environment; ``fd`` is its end of a socket pair. The protocol, pickled over that socket:

- parent -> child: the ``FunctionSpec`` (once), then ``(event, clock_offset_s, deadline_ms, request_id)``
  for each invocation;
- child -> parent: ``("ready", pid, denials)`` after the module loaded (or ``("error", type, message,
  traceback, denials)`` if it did not, and the process ends), then one reply per invocation,
  ``("ok", result, denials)`` or ``("error", type, message, traceback, denials)``.

``denials`` are the IAM denials (``devstack.iam``) recorded in this process since the last reply, so the
stack's ``GET /__devstack/denied`` sees every one a worker recorded. The child reads nothing else and
ends when the parent closes its end (or dies).
"""

from __future__ import annotations

import os
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any


def _error(exc: BaseException) -> tuple[str, str, str]:
    return type(exc).__name__, str(exc), "".join(traceback.format_exception(exc))


def serve(conn: Connection) -> None:
    from devstack import clock, iam
    from devstack.functions import LambdaContext, lambda_context, load_handler

    spec = conn.recv()
    try:
        handler = load_handler(spec)
    except BaseException as exc:  # an init error is the invocation's answer
        conn.send(("error", *_error(exc), iam.take_denials()))
        return
    conn.send(("ready", os.getpid(), iam.take_denials()))
    while True:
        try:
            event, offset, deadline_ms, request_id = conn.recv()
        except EOFError:
            return
        clock._offset_s = offset  # the stack's clock, as the main process holds it (emulator-side reads)
        clock.apply(offset)  # salon.clock, which the handlers read
        context: LambdaContext = lambda_context(spec, request_id, deadline_ms)
        reply: tuple[Any, ...]
        try:
            reply = ("ok", handler(event, context), iam.take_denials())
        except Exception as exc:  # reported to the caller as Lambda reports a function error
            reply = ("error", *_error(exc), iam.take_denials())
        try:
            conn.send(reply)
        except Exception as exc:  # a result that cannot be pickled is a function error too
            conn.send(("error", *_error(exc), iam.take_denials()))


def main() -> None:
    conn = Connection(int(sys.argv[1]))
    try:
        serve(conn)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
