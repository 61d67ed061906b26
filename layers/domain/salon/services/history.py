"""History rules: appointments and their status, product sales, packages and gift cards.

Every function starts from :func:`salon.services.access.client_access` (read once per request,
before routing), checks the role rule of ``ClientAccess`` and then makes one write. "Today" is the
studio's local date in its time zone (a solo pro's book uses UTC).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from salon import clock
from salon.data import keys
from salon.data.history_repo import (
    ClientBlocked,
    ClientGone,
    HistoryRepository,
    NotFoundItem,
    ProfileTouch,
    ProviderNotMember,
    RedemptionRefused,
    SlotTaken,
    StatusRefused,
    repository,
)
from salon.data.models import Appointment, GiftCard, Package, ProviderSlot, Purchase, PurchaseLine, ServiceLine
from salon.data.tx import WriteConflict
from salon.errors import Conflict, NotFound, Unprocessable, field_error
from salon.identity import Caller
from salon.ids import new_id
from salon.schemas.history import (
    SLOT_MINUTES,
    AppointmentCreate,
    AppointmentOut,
    GiftCardCreate,
    GiftCardOut,
    GiftCardRedeem,
    Money,
    PackageCreate,
    PackageOut,
    PurchaseCreate,
    PurchaseItemOut,
    PurchaseOut,
    ServiceOut,
)
from salon.services.access import ClientAccess, client_access, local_today

Action = Literal["check-in", "complete", "cancel", "no-show"]
ACTIONS: tuple[str, ...] = ("check-in", "complete", "cancel", "no-show")

#: action -> (statuses it starts from, status it leads to). Everything else is 409 invalid_transition.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "check-in": (("booked",), "checked_in"),
    "complete": (("checked_in",), "completed"),
    "cancel": (("booked", "checked_in"), "cancelled"),
    "no-show": (("booked",), "no_show"),
}
#: Statuses that hold the provider's time; cancelling or marking a no-show gives it back.
RELEASES_SLOTS = frozenset({"cancelled", "no_show"})
#: How far ahead an appointment may be booked, and how early before its start a check-in opens.
BOOKING_HORIZON = dt.timedelta(days=400)
CHECK_IN_OPENS = dt.timedelta(hours=12)
SLOT_TTL = dt.timedelta(days=7)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def studio_today(access: ClientAccess) -> str:
    return local_today(access.book.time_zone)


def _touch(access: ClientAccess, pro_id: str, *, assign: bool = False) -> ProfileTouch:
    """Add ``pro_id`` to the profile's history (and assignees) only when it is not there yet."""
    client = access.client
    history = frozenset() if pro_id in (client.history_pros or set()) else frozenset({pro_id})
    assignees = frozenset({pro_id}) if assign and pro_id not in (client.assignees or set()) else frozenset()
    return ProfileTouch(access.client_id, client.owner, history, assignees)


def _busy() -> Conflict:
    return Conflict("The client is being changed by someone else right now; try again.", code="write_conflict")


def _client_gone() -> NotFound:
    return NotFound("No such client.", code="client_not_found")


# ---------------------------------------------------------------- appointments
def slot_minutes(start: dt.datetime, minutes: int) -> list[str]:
    """The provider's 5-minute slots an appointment holds, as UTC ``yyyy-mm-ddThh:mm``."""
    begin = start.astimezone(dt.UTC)
    return [(begin + dt.timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M") for m in range(0, minutes, SLOT_MINUTES)]


def book_appointment(
    caller: Caller, client_id: str, data: AppointmentCreate, repo: HistoryRepository = repository
) -> AppointmentOut:
    """Book the client with a provider: the caller, or for an admin any active member of the studio.

    One transaction puts the appointment and every 5-minute slot of the provider's time it holds
    (``attribute_not_exists``: an overlapping booking fails, 409 ``slot_taken``), checks that the
    provider has not blocked the client (409 ``client_blocked``), and assigns the provider to the
    client and adds them to its ``history_pros``.
    """
    access = client_access(caller, client_id)
    access.require(access.can_book, "Your role may not book appointments.")
    access.require(access.can_book_for(data.provider_id), "You may book appointments only for yourself.")
    minutes = sum(s.minutes for s in data.services)
    start = data.start.astimezone(dt.UTC)
    end = start + dt.timedelta(minutes=minutes)
    now = clock.now()
    if end <= now:
        raise field_error("body", "start", "The appointment would be over already.")
    if start > now + BOOKING_HORIZON:
        raise field_error("body", "start", "Appointments can be booked at most 400 days ahead.")

    appointment_id = new_id()
    cid = access.client_id
    stamp = clock.now_iso()
    appt = Appointment(keys.client_pk(cid), keys.appointment_sk(appointment_id))
    appt.appointment_id = appointment_id
    appt.client_id = cid
    appt.provider_id = data.provider_id
    appt.booked_by = caller.pro_id
    appt.start = _iso(start)
    appt.end = _iso(end)
    appt.minutes = minutes
    appt.services = [ServiceLine(name=s.name, minutes=s.minutes, price=s.price.amount) for s in data.services]
    appt.total = sum(s.price.amount for s in data.services)
    appt.currency = data.services[0].price.currency
    appt.status = "booked"
    appt.created_at = stamp
    appt.updated_at = stamp
    slots = _slots(appt, start, end)
    appt.slots = [slot.sk for slot in slots]

    other_member = access.book.studio_id if data.provider_id != caller.pro_id else None
    try:
        repo.book(appt, slots, _touch(access, data.provider_id, assign=True), other_member)
    except ClientGone:
        raise _client_gone() from None
    except ProviderNotMember:
        raise Unprocessable(
            "The provider is not an active member of the studio.",
            code="provider_not_member",
            details=[{"loc": ["body", "provider_id"], "msg": "not an active member", "type": "value_error"}],
        ) from None
    except ClientBlocked:
        raise Conflict("The provider has blocked this client.", code="client_blocked") from None
    except SlotTaken:
        raise Conflict("The provider already has an appointment at that time.", code="slot_taken") from None
    except WriteConflict:
        raise _busy() from None
    return appointment_out(appt)


def _slots(appt: Appointment, start: dt.datetime, end: dt.datetime) -> list[ProviderSlot]:
    """The provider's slot items the appointment holds; they lapse a week after the visit."""
    slots = []
    for minute in slot_minutes(start, int(appt.minutes)):
        slot = ProviderSlot(keys.pro_pk(appt.provider_id), keys.slot_sk(minute))
        slot.provider_id = appt.provider_id
        slot.appointment_id = appt.appointment_id
        slot.client_id = appt.client_id
        slot.expires_at = end + SLOT_TTL
        slots.append(slot)
    return slots


def act_on_appointment(
    caller: Caller, client_id: str, appointment_id: str, action: str, repo: HistoryRepository = repository
) -> AppointmentOut:
    """Check in, complete, cancel or mark a no-show: one conditional write on the status.

    Check-in also records today's (studio-local) check-in of the client, which lets the studio's
    apprentices and assistants open the client's log until the end of that day; cancel and no-show
    give the provider's time back.
    """
    access = client_access(caller, client_id)
    access.require(access.can_book, "Your role may not change appointments.")
    froms, to = TRANSITIONS[action]
    appt = repo.get_appointment(access.client_id, appointment_id)
    if appt is None:
        raise NotFound("No such appointment.", code="appointment_not_found")
    access.require(access.can_book_for(appt.provider_id), "You may change only your own appointments.")
    if appt.status not in froms:
        raise _invalid(action, appt.status)
    now = clock.now()
    checkin_date = None
    expires = None
    if action == "check-in":
        start, end = _parse(appt.start), _parse(appt.end)
        if not start - CHECK_IN_OPENS <= now <= end + CHECK_IN_OPENS:
            raise Conflict(
                "Check-in opens 12 hours before the appointment and closes 12 hours after its end.",
                code="check_in_window",
            )
        checkin_date = studio_today(access)
        expires = _end_of_local_day(checkin_date, access.book.time_zone) + dt.timedelta(days=1)
    try:
        moved = repo.move_appointment(
            appt,
            to,
            froms,
            clock.now_iso(),
            release_slots=to in RELEASES_SLOTS,
            checkin_date=checkin_date,
            studio_id=access.book.studio_id,
            checkin_expires_epoch=int(expires.timestamp()) if expires else None,
        )
    except NotFoundItem:
        raise NotFound("No such appointment.", code="appointment_not_found") from None
    except StatusRefused as refused:
        raise _invalid(action, refused.status) from None
    except WriteConflict:
        raise _busy() from None
    return appointment_out(moved)


def _invalid(action: str, status: str) -> Conflict:
    return Conflict(
        f"An appointment that is {status.replace('_', ' ')} cannot be {action}.",
        code="invalid_transition",
        details={"status": status, "action": action},
    )


def _end_of_local_day(local_date: str, time_zone: str) -> dt.datetime:
    day = dt.date.fromisoformat(local_date) + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(time_zone))


def appointment_out(appt: Appointment) -> AppointmentOut:
    currency = str(appt.currency)
    return AppointmentOut(
        appointment_id=appt.appointment_id,
        client_id=appt.client_id,
        provider_id=appt.provider_id,
        booked_by=appt.booked_by,
        start=_parse(appt.start),
        end=_parse(appt.end),
        minutes=int(appt.minutes),
        services=[
            ServiceOut(name=s.name, minutes=int(s.minutes), price=Money(amount=int(s.price), currency=currency))
            for s in appt.services
        ],
        total=Money(amount=int(appt.total), currency=currency),
        status=appt.status,  # type: ignore[arg-type]
        created_at=_parse(appt.created_at),
        updated_at=_parse(appt.updated_at),
    )


# -------------------------------------------------------------------- purchases
def sell_products(
    caller: Caller, client_id: str, data: PurchaseCreate, repo: HistoryRepository = repository
) -> PurchaseOut:
    """A new ticket: the items sent, or the items of an earlier purchase of this client (at its prices)."""
    access = client_access(caller, client_id)
    access.require(access.can_sell, "Your role may not sell.")
    cid = access.client_id
    if data.repeat_of is not None:
        earlier = repo.get_purchase(cid, data.repeat_of)
        if earlier is None:
            raise NotFound("No such purchase of this client.", code="purchase_not_found")
        lines = [
            PurchaseLine(sku=i.sku, name=i.name, quantity=int(i.quantity), unit_price=int(i.unit_price))
            for i in earlier.items
        ]
        currency = str(earlier.currency)
    else:
        assert data.items is not None
        lines = [
            PurchaseLine(sku=i.sku, name=i.name, quantity=i.quantity, unit_price=i.unit_price.amount)
            for i in data.items
        ]
        currency = data.items[0].unit_price.currency
    purchase_id = new_id()
    purchase = Purchase(keys.client_pk(cid), keys.purchase_sk(purchase_id))
    purchase.purchase_id = purchase_id
    purchase.client_id = cid
    purchase.items = lines
    purchase.total = sum(int(line.quantity) * int(line.unit_price) for line in lines)
    purchase.currency = currency
    purchase.sold_by = caller.pro_id
    purchase.repeat_of = data.repeat_of
    purchase.created_at = clock.now_iso()
    _sell(repo, purchase, access, caller)
    return purchase_out(purchase)


def _sell(repo: HistoryRepository, item: Purchase | Package | GiftCard, access: ClientAccess, caller: Caller) -> None:
    try:
        repo.sell(item, _touch(access, caller.pro_id))
    except ClientGone:
        raise _client_gone() from None
    except WriteConflict:
        raise _busy() from None


def purchase_out(purchase: Purchase) -> PurchaseOut:
    currency = str(purchase.currency)
    return PurchaseOut(
        purchase_id=purchase.purchase_id,
        client_id=purchase.client_id,
        items=[
            PurchaseItemOut(
                sku=i.sku,
                name=i.name,
                quantity=int(i.quantity),
                unit_price=Money(amount=int(i.unit_price), currency=currency),
            )
            for i in purchase.items
        ],
        total=Money(amount=int(purchase.total), currency=currency),
        sold_by=purchase.sold_by,
        repeat_of=purchase.repeat_of,
        created_at=_parse(purchase.created_at),
    )


# --------------------------------------------------------------------- packages
def sell_package(
    caller: Caller, client_id: str, data: PackageCreate, repo: HistoryRepository = repository
) -> PackageOut:
    access = client_access(caller, client_id)
    access.require(access.can_sell, "Your role may not sell.")
    if data.expires_on is not None and data.expires_on.isoformat() < studio_today(access):
        raise field_error("body", "expires_on", "The last day is already past in the studio's time zone.")
    cid = access.client_id
    package_id = new_id()
    package = Package(keys.client_pk(cid), keys.package_sk(package_id))
    package.package_id = package_id
    package.client_id = cid
    package.name = data.name
    package.sessions = data.sessions
    package.sessions_left = data.sessions
    package.expires_on = data.expires_on.isoformat() if data.expires_on else None
    package.price = data.price.amount
    package.currency = data.price.currency
    package.sold_by = caller.pro_id
    package.created_at = clock.now_iso()
    _sell(repo, package, access, caller)
    return package_out(package)


def redeem_session(caller: Caller, client_id: str, package_id: str, repo: HistoryRepository = repository) -> PackageOut:
    """One session: a conditional ``sessions_left - 1`` that never goes below zero or past the last day."""
    access = client_access(caller, client_id)
    access.require(access.can_sell, "Your role may not redeem packages.")
    today = studio_today(access)
    try:
        package = repo.redeem_session(access.client_id, package_id, today, clock.now_iso())
    except NotFoundItem:
        raise NotFound("No such package.", code="package_not_found") from None
    except RedemptionRefused as refused:
        current = refused.item
        if not isinstance(current, Package):
            raise NotFound("No such package.", code="package_not_found") from None
        if int(current.sessions_left) <= 0:
            raise Conflict("No sessions are left on this package.", code="package_exhausted") from None
        raise Conflict(
            "This package has expired.", code="package_expired", details={"expires_on": current.expires_on}
        ) from None
    return package_out(package)


def package_out(package: Package) -> PackageOut:
    return PackageOut(
        package_id=package.package_id,
        client_id=package.client_id,
        name=package.name,
        sessions=int(package.sessions),
        sessions_left=int(package.sessions_left),
        expires_on=dt.date.fromisoformat(package.expires_on) if package.expires_on else None,
        price=Money(amount=int(package.price), currency=str(package.currency)),
        sold_by=package.sold_by,
        created_at=_parse(package.created_at),
        last_redeemed_at=_parse(package.last_redeemed_at) if package.last_redeemed_at else None,
    )


# ------------------------------------------------------------------- gift cards
def issue_gift_card(
    caller: Caller, client_id: str, data: GiftCardCreate, repo: HistoryRepository = repository
) -> GiftCardOut:
    access = client_access(caller, client_id)
    access.require(access.can_sell, "Your role may not sell.")
    cid = access.client_id
    gift_card_id = new_id()
    card = GiftCard(keys.client_pk(cid), keys.gift_card_sk(gift_card_id))
    card.gift_card_id = gift_card_id
    card.client_id = cid
    card.amount = data.amount
    card.balance = data.amount
    card.currency = data.currency
    card.sold_by = caller.pro_id
    card.created_at = clock.now_iso()
    _sell(repo, card, access, caller)
    return gift_card_out(card)


def redeem_gift_card(
    caller: Caller, client_id: str, gift_card_id: str, data: GiftCardRedeem, repo: HistoryRepository = repository
) -> GiftCardOut:
    """Take ``amount`` off the balance: a conditional ``balance - amount`` that never goes negative."""
    access = client_access(caller, client_id)
    access.require(access.can_sell, "Your role may not redeem gift cards.")
    try:
        card = repo.redeem_gift_card(access.client_id, gift_card_id, data.amount, clock.now_iso(), data.currency)
    except NotFoundItem:
        raise NotFound("No such gift card.", code="gift_card_not_found") from None
    except RedemptionRefused as refused:
        current = refused.item
        if not isinstance(current, GiftCard):
            raise NotFound("No such gift card.", code="gift_card_not_found") from None
        if data.currency is not None and data.currency != current.currency:
            raise Unprocessable(
                f"This gift card is in {current.currency}.",
                code="currency_mismatch",
                details=[{"loc": ["body", "currency"], "msg": "not the card's currency", "type": "value_error"}],
            ) from None
        raise Conflict(
            "The amount is above the gift card's balance.",
            code="insufficient_balance",
            details={"balance": {"amount": int(current.balance), "currency": current.currency}},
        ) from None
    return gift_card_out(card)


def gift_card_out(card: GiftCard) -> GiftCardOut:
    currency = str(card.currency)
    return GiftCardOut(
        gift_card_id=card.gift_card_id,
        client_id=card.client_id,
        amount=Money(amount=int(card.amount), currency=currency),
        balance=Money(amount=int(card.balance), currency=currency),
        sold_by=card.sold_by,
        created_at=_parse(card.created_at),
        last_redeemed_at=_parse(card.last_redeemed_at) if card.last_redeemed_at else None,
    )
