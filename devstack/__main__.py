"""``python -m devstack serve`` runs the local stack; ``python -m devstack token`` prints a token."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from devstack import faults, tokens
from devstack.emulator import port_free


def _serve(args: argparse.Namespace) -> int:
    for name, port in (("API", args.port), ("emulator", args.emulator_port)):
        if not port_free(args.host, port):
            print(
                f"error: the {name} port {port} on {args.host} is taken. "
                f"Stop whatever holds it, or choose another: PORT=3001 EMULATOR_PORT=4567 make dev",
                file=sys.stderr,
            )
            return 2
    import faulthandler

    try:
        faults.configure()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from devstack.stack import LocalStack

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    stack = LocalStack(api_port=args.port, emulator_port=args.emulator_port, host=args.host)
    stopped = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    stack.start()
    print(f"API       {stack.api_url}   (docs: {stack.api_url}/docs, spec: {stack.api_url}/openapi.json)", flush=True)
    print(f"Emulator  {stack.emulator.endpoint}   (moto server: table, stream, bucket, queues)", flush=True)
    print(f"Faults    {faults.describe()}   (GET {stack.api_url}/__devstack/faults)", flush=True)
    print("Token     make token SUB=alice   (GROUPS=operators for an operator)", flush=True)
    print("Ready. Ctrl-C stops everything.", flush=True)
    stopped.wait()
    print("Stopping...", file=sys.stderr, flush=True)
    stack.stop()
    return 0


def _token(args: argparse.Namespace) -> int:
    groups = [g for g in (args.groups or "").split(",") if g]
    print(tokens.mint(args.sub, groups, ttl_s=args.ttl))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the local stack")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    serve.add_argument("--emulator-port", type=int, default=int(os.environ.get("EMULATOR_PORT", "4566")))
    serve.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "WARNING"))
    token = sub.add_parser("token", help="print a token the local API accepts")
    token.add_argument("--sub", required=True)
    token.add_argument("--groups", default="")
    token.add_argument("--ttl", type=int, default=12 * 3600)
    args = parser.parse_args(argv)
    if args.command == "serve":
        logging.basicConfig(
            level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
        return _serve(args)
    return _token(args)


if __name__ == "__main__":
    sys.exit(main())
