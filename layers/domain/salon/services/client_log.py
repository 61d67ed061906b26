"""The Client Log: everything about one client, access first.

The route brings its own access loader (``salon.api.RouteAccess``): one BatchGetItem of the small items
access is decided from (the caller's pro profile and their flags on the client, the client's profile,
alias and check-ins around today), decided with the same ``visible()`` rule as every other route. Only
a caller who may see the client costs the second call, one Query of the client's item collection: a
refused read is the one call a missing client is, whatever the record holds (decision D36). An id that
was merged away (only an ``ALIAS`` item) costs one more BatchGetItem of the survivor.

Items are read as plain values, not through the models, so item kinds other engineers add later
(or an older shape of one) never break the log: an item that cannot be shown is skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools import Logger

from salon import clock
from salon.data import keys
from salon.data.history_repo import HistoryRepository, Raw, plain
from salon.data.history_repo import repository as history_repository
from salon.data.models import Appointment, GiftCard, Package, Purchase, item_from_raw
from salon.identity import Caller
from salon.schemas.history import (
    AppointmentOut,
    ClientLog,
    GiftCardOut,
    LogFile,
    LogFormula,
    LogNote,
    PackageOut,
    PurchaseOut,
)
from salon.services.access import ClientAccess, client_access, seed_access
from salon.services.clients import to_client
from salon.services.history import appointment_out, gift_card_out, package_out, purchase_out
from salon.settings import get_settings

logger = Logger(child=True)

SECTION_LIMIT = 50
UPCOMING = frozenset({"booked", "checked_in"})

#: The access the loader decided, and whether the caller blocked the client (this request's only).
_read: ContextVar[tuple[ClientAccess, bool] | None] = ContextVar("client_log_access", default=None)


def load_access(caller: Caller, client_id: str, history: HistoryRepository = history_repository) -> ClientAccess:
    """The log's access loader: the small items in one BatchGetItem, nothing of the record yet."""
    read, blocked = history.access_items(caller.pro_id, client_id)
    access = seed_access(caller, client_id, read.pro, read.client, read.checkin_dates)
    _read.set((access, blocked))
    return access


def _typed(raw: Raw | None) -> Any:
    if raw is None:
        return None
    try:
        return item_from_raw(raw)
    except Exception:
        return None


def client_log(caller: Caller, client_id: str, history: HistoryRepository = history_repository) -> ClientLog:
    """The whole record of a client, each section bounded: the collection is read once access is granted."""
    access = client_access(caller, client_id)
    seeded = _read.get()
    _read.set(None)
    if seeded is not None and seeded[0] is access:
        blocked = seeded[1]
    else:
        _, blocked = history.caller_items(caller.pro_id, client_id)
    return build_log(access, history.client_items(access.client_id), blocked=blocked)


class _Sections:
    """The log's sections, filled item by item from the collection."""

    def __init__(self, now: dt.datetime, blocked_by: str | None) -> None:
        self.now = now
        self.blocked_by = blocked_by
        self.past: list[AppointmentOut] = []
        self.upcoming: list[AppointmentOut] = []
        self.purchases: list[PurchaseOut] = []
        self.packages: list[PackageOut] = []
        self.gift_cards: list[GiftCardOut] = []
        self.notes: list[LogNote] = []
        self.formulas: dict[str, LogFormula] = {}
        self.files: list[tuple[str, LogFile]] = []
        self.photo: tuple[str, LogFile] | None = None

    def add(self, sk: str, raw: Raw) -> None:
        for prefix, handler in (
            (keys.APPOINTMENT_PREFIX, self._appointment),
            (keys.PURCHASE_PREFIX, self._typed_into(Purchase, purchase_out, self.purchases)),
            (keys.PACKAGE_PREFIX, self._typed_into(Package, package_out, self.packages)),
            (keys.GIFT_CARD_PREFIX, self._typed_into(GiftCard, gift_card_out, self.gift_cards)),
            ("NOTE#", self._note),
            ("FORMULA#", self._formula),
            (keys.UPLOAD_PREFIX, self._file),
        ):
            if sk.startswith(prefix):
                handler(raw)
                return

    @staticmethod
    def _typed_into(model: type[Any], convert: Callable[[Any], Any], into: list[Any]) -> Callable[[Raw], None]:
        def add(raw: Raw) -> None:
            item = _typed(raw)
            if isinstance(item, model):
                into.append(convert(item))

        return add

    def _appointment(self, raw: Raw) -> None:
        appt = _typed(raw)
        if not isinstance(appt, Appointment):
            return
        out = appointment_out(appt)
        if self.blocked_by is not None and appt.provider_id == self.blocked_by:
            out.blocked = True
        if appt.status == "completed":
            self.past.append(out)
        elif appt.status in UPCOMING and out.end > self.now:
            self.upcoming.append(out)

    def _note(self, raw: Raw) -> None:
        self.notes.append(LogNote.model_validate(_pick(plain(raw), LogNote)))

    def _formula(self, raw: Raw) -> None:
        formula = LogFormula.model_validate(_pick(plain(raw), LogFormula))
        current = self.formulas.get(formula.formula_id)
        if current is None or formula.version > current.version:
            self.formulas[formula.formula_id] = formula

    def _file(self, raw: Raw) -> None:
        found = _file(plain(raw))
        if found is None:
            return
        order, out, is_photo = found
        self.files.append((order, out))
        if is_photo and (self.photo is None or order > self.photo[0]):
            self.photo = (order, out)


def build_log(
    access: ClientAccess, items: list[Raw], *, blocked: bool = False, now: dt.datetime | None = None
) -> ClientLog:
    """The log from the collection's items. ``blocked``: the caller blocked this client; their own
    bookings with it are flagged (they stand: SPEC.md)."""
    sections = _Sections(now or clock.now(), access.caller.pro_id if blocked else None)
    for raw in items:
        sk = str(raw.get("sk", {}).get("S", ""))
        try:
            sections.add(sk, raw)
        except Exception:  # an item of an unexpected shape is left out, never a 500
            logger.warning("client log skipped an item", extra={"sk": sk})

    more: list[str] = []

    def bounded(name: str, entries: list[Any], key: Callable[[Any], Any], reverse: bool) -> list[Any]:
        entries.sort(key=key, reverse=reverse)
        if len(entries) > SECTION_LIMIT:
            more.append(name)
        return entries[:SECTION_LIMIT]

    return ClientLog(
        client=to_client(access.client, access.book).model_copy(update={"blocked": blocked}),
        profile_photo=sections.photo[1] if sections.photo else None,
        past_services=bounded("past_services", sections.past, lambda a: (a.start, a.appointment_id), True),
        upcoming_appointments=bounded(
            "upcoming_appointments", sections.upcoming, lambda a: (a.start, a.appointment_id), False
        ),
        purchases=bounded("purchases", sections.purchases, lambda p: (p.created_at, p.purchase_id), True),
        packages=bounded("packages", sections.packages, lambda p: (p.created_at, p.package_id), True),
        gift_cards=bounded("gift_cards", sections.gift_cards, lambda g: (g.created_at, g.gift_card_id), True),
        notes=bounded("notes", sections.notes, lambda n: (n.created_at, n.note_id), True),
        formulas=bounded("formulas", list(sections.formulas.values()), lambda f: (f.updated_at, f.formula_id), True),
        files=[f for _, f in bounded("files", sections.files, lambda f: f[0], True)],
        section_limit=SECTION_LIMIT,
        more=more,
    )


def _pick(values: dict[str, Any], model: type[Any]) -> dict[str, Any]:
    return {name: values.get(name) for name in model.model_fields if name in values}


def _file(values: dict[str, Any]) -> tuple[str, LogFile, bool] | None:
    """A confirmed upload (sort key: when it was confirmed), and whether it is the profile photo."""
    if values.get("status") != "confirmed":
        return None
    fields = _pick(values, LogFile)
    fields["profile"] = bool(values.get("profile"))
    if values.get("object_key"):
        fields["download_url"] = _presign(str(values["object_key"]), values.get("version_id"))
    if values.get("thumbnail_key"):
        fields["thumbnail_url"] = _presign(str(values["thumbnail_key"]), values.get("thumbnail_version_id"))
    out = LogFile.model_validate(fields)
    return str(values.get("confirmed_at") or values.get("created_at") or ""), out, out.profile


def _presign(key: str, version_id: Any) -> str:
    """A short-lived GET of the confirmed version of a client's file: signed locally, no call to S3.

    The uploads store's presigner: SigV4 on the bucket's regional endpoint, naming the version.
    """
    from salon.data.uploads_repo import file_store

    return file_store.presign_get(key, get_settings().download_url_ttl_seconds, str(version_id) if version_id else None)
