"""EventBridge schedules in the local stack: a function's ``Schedule`` events fire on the stack's clock.

``rate(N minute|minutes|hour|hours|day|days)`` fires every N units, the first time one period after the stack
starts, as a rule created then would (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html).
The function gets the event EventBridge sends (``"source": "aws.events"``, ``"detail-type": "Scheduled
Event"``, the rule's ARN in ``resources``), asynchronously: a failure is logged and not retried here (the jobs
function's sweep asks for no retries). ``POST /__devstack/clock`` moves the clock: a jump over one period or
more fires once, not once per period missed. ``cron(...)`` expressions are not emulated (none is used).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from devstack import clock
from devstack.template import LOCAL_ACCOUNT, LOCAL_REGION, LOCAL_STACK_NAME

log = logging.getLogger("devstack.schedules")
TICK_S = 0.5
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


class Invoker(Protocol):
    def invoke(self, event: dict[str, Any]) -> Any: ...


def period_s(expression: str) -> int | None:
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match[1]) * _UNIT_S[match[2].rstrip("s")]


def scheduled_event(rule_arn: str, at: float) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT,
        "time": dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [rule_arn],
        "detail": {},
    }


@dataclass
class _Entry:
    name: str
    rule_arn: str
    period_s: int
    pool: Invoker
    next_at: float
    fired: int = 0


class Scheduler(threading.Thread):
    """Fires every wired schedule when the stack's clock reaches it."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(name="schedules", daemon=True)
        self._stop_event = stop
        self.entries: list[_Entry] = []

    def add(self, function_id: str, event_name: str, props: dict[str, Any], pool: Invoker) -> None:
        expression = str(props.get("Schedule", ""))
        period = period_s(expression)
        if period is None:
            log.warning("%s.%s: %r is not emulated (only rate(...))", function_id, event_name, expression)
            return
        if props.get("Enabled") is False or props.get("State") == "DISABLED":
            return
        rule = f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:rule/{LOCAL_STACK_NAME}-{function_id}{event_name}"
        self.entries.append(_Entry(f"{function_id}.{event_name}", rule, period, pool, clock.now() + period))

    def fire_due(self, now: float | None = None) -> int:
        """Invoke every schedule that is due; returns how many fired."""
        now = clock.now() if now is None else now
        fired = 0
        for entry in self.entries:
            if now < entry.next_at:
                continue
            entry.next_at = now + entry.period_s
            entry.fired += 1
            fired += 1
            try:
                entry.pool.invoke(scheduled_event(entry.rule_arn, now))
            except Exception:
                log.exception("%s: the scheduled invocation failed (not retried)", entry.name)
        return fired

    def run(self) -> None:
        while not self._stop_event.wait(TICK_S):
            self.fire_due()
