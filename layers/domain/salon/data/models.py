"""pynamodb models of the single table.

Every item type is a subclass of :class:`TableItem`, told apart by the ``kind``
discriminator, so one Query of an item collection comes back as typed objects.
Models declare their keys and indexes, so pynamodb never calls DescribeTable.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.connection import TableConnection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from salon.data.retry import install as install_retries
from salon.settings import get_settings


class BookIndex(GlobalSecondaryIndex["TableItem"]):
    """gsi1: a book's clients by folded name (``BOOK#<owner>`` / ``NAME#<name>#<cid>``)."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class FeedIndex(GlobalSecondaryIndex["TableItem"]):
    """gsi2: a pro's change feed (``FEED#<pro>`` / ``<changed_at>#<cid>``)."""

    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class TableItem(Model):
    class Meta:
        table_name = get_settings().table_name

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    book_index = BookIndex()
    feed_index = FeedIndex()

    @classmethod
    def _get_connection(cls) -> TableConnection:
        """pynamodb's cached connection, its client carrying the retries of conflicts and throttles
        (``salon.data.retry``): every model call and every raw call on ``table_connection()`` goes through it."""
        connection = super()._get_connection()
        install_retries(connection.connection.client)
        return connection


class ProProfile(TableItem, discriminator="pro"):
    """``PRO#<pro>`` / ``PROFILE``: the caller's "who am I", read on every request that needs it."""

    plan = UnicodeAttribute(default="basic")
    studio_id = UnicodeAttribute(null=True)
    role = UnicodeAttribute(null=True)
    membership_status = UnicodeAttribute(null=True)
    studio_country = UnicodeAttribute(null=True)
    studio_time_zone = UnicodeAttribute(null=True)
    studio_plan = UnicodeAttribute(null=True)  # the studio's plan, copied to each member when it changes
    studio_plan_version = NumberAttribute(null=True)  # the copied decision's version (an older one never wins)


class ContactFields:
    """Attributes shared by a client's profile and every pro's view of it."""

    name = UnicodeAttribute()
    name_folded = UnicodeAttribute()
    phone = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    birthday = UnicodeAttribute(null=True)
    tags = ListAttribute[str](null=True)
    allergies = ListAttribute[str](null=True)
    marketing_consent = BooleanAttribute(default=False)
    version = NumberAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class ClientProfile(TableItem, ContactFields, discriminator="client"):
    """``CLIENT#<cid>`` / ``PROFILE``: the book's record of a client."""

    client_id = UnicodeAttribute()
    owner = UnicodeAttribute()  # "PRO#<pro>" for a solo book, "STUDIO#<sid>" for a studio's
    created_by = UnicodeAttribute()
    brought_by = UnicodeAttribute(null=True)
    assignees = UnicodeSetAttribute(default=set)
    history_pros = UnicodeSetAttribute(default=set)
    deleted_at = UnicodeAttribute(null=True)  # set when deleted; the cascade job removes the rest
    # Who entered the current phone and email (set on create and on each edit of the value): a leaving
    # apprentice or assistant keeps only the values they entered themselves (SPEC "Leave").
    phone_by = UnicodeAttribute(null=True)
    email_by = UnicodeAttribute(null=True)
    # The value the client's registrar entered, kept when someone else replaced or cleared it: a masked
    # registrar who leaves keeps it instead of the value masked from them. Never shown.
    registrar_phone = UnicodeAttribute(null=True)
    registrar_email = UnicodeAttribute(null=True)
    # The last stamped write's who and why, for the audit trail written from the stream: a record carries
    # them when its new image's ``change_at`` differs from the old one's (D32).
    changed_by = UnicodeAttribute(null=True)
    change_reason = UnicodeAttribute(null=True)
    change_at = UnicodeAttribute(null=True)


class ClientView(TableItem, ContactFields, discriminator="view"):
    """``PRO#<pro>`` / ``CLIENT#<cid>``: one pro's copy of a client, masked by role."""

    client_id = UnicodeAttribute()
    owner = UnicodeAttribute()
    masked = BooleanAttribute(default=False)
    changed_at = NumberAttribute()


class ClientTombstone(TableItem, discriminator="gone"):
    """``PRO#<pro>`` / ``CLIENT#<cid>``: a removed view, in the view's place (its version keeps a late, older
    record from bringing the view back) until the change feed's retention lapses (TTL)."""

    client_id = UnicodeAttribute()
    version = NumberAttribute()
    changed_at = NumberAttribute()


class Studio(TableItem, discriminator="studio"):
    """``STUDIO#<sid>`` / ``STUDIO``: the team account, with every member's role for masking views."""

    studio_id = UnicodeAttribute()
    name = UnicodeAttribute()
    country = UnicodeAttribute(default="US")
    time_zone = UnicodeAttribute(default="UTC")
    plan = UnicodeAttribute(default="basic")
    plan_version = NumberAttribute(null=True)  # one more with each plan decision (copied with it to the members)
    owner_id = UnicodeAttribute()
    member_roles = MapAttribute[str, str](default=dict)
    admin_count = NumberAttribute(default=1)
    created_at = UnicodeAttribute(null=True)


class ClientAlias(TableItem, discriminator="alias"):
    """``CLIENT#<old cid>`` / ``ALIAS``: a client merged into another; the old id keeps resolving."""

    client_id = UnicodeAttribute()  # the surviving client


class CheckIn(TableItem, discriminator="checkin"):
    """``CLIENT#<cid>`` / ``CHECKIN#<studio local date>``: the client was checked in that day.

    Apprentices and assistants may read the client's log until the end of that local day.
    """

    client_id = UnicodeAttribute()
    studio_id = UnicodeAttribute()
    local_date = UnicodeAttribute()
    appointment_ids = UnicodeSetAttribute(default=set)


class ServiceLine(MapAttribute[str, Any]):
    """One service of an appointment; its price in integer minor units of the appointment's currency."""

    name = UnicodeAttribute()
    minutes = NumberAttribute()
    price = NumberAttribute()


class Appointment(TableItem, discriminator="appointment"):
    """``CLIENT#<cid>`` / ``APPT#<aid>``: a visit booked with one provider.

    ``status`` moves only by one conditional write: booked -> checked_in -> completed, booked or
    checked_in -> cancelled, booked -> no_show. Times are UTC (``...Z``); ``slots`` names the
    provider's 5-minute slot items it holds until it is cancelled or missed.
    """

    appointment_id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    provider_id = UnicodeAttribute()
    booked_by = UnicodeAttribute()
    start = UnicodeAttribute()
    end = UnicodeAttribute()
    minutes = NumberAttribute()
    services = ListAttribute[ServiceLine](of=ServiceLine)
    total = NumberAttribute()
    currency = UnicodeAttribute()
    status = UnicodeAttribute()
    slots = ListAttribute[str](default=list)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class ProviderSlot(TableItem, discriminator="slot"):
    """``PRO#<provider>`` / ``SLOT#<utc minute>``: 5 minutes of a provider's time, held by one appointment.

    Booking puts every slot of the visit with ``attribute_not_exists`` in the appointment's transaction,
    so two overlapping bookings can never both succeed.
    """

    provider_id = UnicodeAttribute()
    appointment_id = UnicodeAttribute()
    client_id = UnicodeAttribute()


class PurchaseLine(MapAttribute[str, Any]):
    sku = UnicodeAttribute()
    name = UnicodeAttribute()
    quantity = NumberAttribute()
    unit_price = NumberAttribute()


class Purchase(TableItem, discriminator="purchase"):
    """``CLIENT#<cid>`` / ``PURCHASE#<pid>``: one ticket of products; amounts in minor units of ``currency``."""

    purchase_id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    items = ListAttribute[PurchaseLine](of=PurchaseLine)
    total = NumberAttribute()
    currency = UnicodeAttribute()
    sold_by = UnicodeAttribute()
    repeat_of = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()


class Package(TableItem, discriminator="package"):
    """``CLIENT#<cid>`` / ``PKG#<pkid>``: N sessions, optional last day (studio-local); redeemed by a
    conditional ``sessions_left - 1``."""

    package_id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    name = UnicodeAttribute()
    sessions = NumberAttribute()
    sessions_left = NumberAttribute()
    expires_on = UnicodeAttribute(null=True)
    price = NumberAttribute()
    currency = UnicodeAttribute()
    sold_by = UnicodeAttribute()
    created_at = UnicodeAttribute()
    last_redeemed_at = UnicodeAttribute(null=True)


class GiftCard(TableItem, discriminator="giftcard"):
    """``CLIENT#<cid>`` / ``GIFT#<gid>``: issued with an amount; redeemed by a conditional ``balance - x``."""

    gift_card_id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    amount = NumberAttribute()
    balance = NumberAttribute()
    currency = UnicodeAttribute()
    sold_by = UnicodeAttribute()
    created_at = UnicodeAttribute()
    last_redeemed_at = UnicodeAttribute(null=True)


class UniqueContact(TableItem, discriminator="unique"):
    """``BOOK#<owner>#PHONE#<e164>`` (or ``EMAIL``) / ``UNIQUE``: one client per phone and email in a book."""

    client_id = UnicodeAttribute()


class Note(TableItem, discriminator="note"):
    """``CLIENT#<cid>`` / ``NOTE#<ulid>``: one note, seen by whoever may see the client; one item, so
    a delete removes it for everyone."""

    client_id = UnicodeAttribute()
    note_id = UnicodeAttribute()
    author_id = UnicodeAttribute()
    body = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class FormulaVersion(TableItem, discriminator="formula"):
    """``CLIENT#<cid>`` / ``FORMULA#<fid>#<000001>``: one version of a colour formula; a change adds
    the next version and never rewrites an earlier one."""

    client_id = UnicodeAttribute()
    formula_id = UnicodeAttribute()
    version = NumberAttribute()
    name = UnicodeAttribute()
    body = UnicodeAttribute()
    author_id = UnicodeAttribute()  # who wrote this version
    created_by = UnicodeAttribute()  # who wrote version 1
    created_at = UnicodeAttribute()  # when version 1 was written
    updated_at = UnicodeAttribute()  # when this version was written


class UploadQuota(TableItem, discriminator="quota"):
    """``CLIENT#<cid>`` / ``QUOTA``: files the client holds (confirmed and pending reservations).

    Changed only by single ``ADD used`` updates (a conditional one reserves a slot), never read-then-write.
    A merge on join may add moved files, taking ``used`` above the limit.
    """

    used = NumberAttribute(default=0)


class Upload(TableItem, discriminator="upload"):
    """``CLIENT#<cid>`` / ``UPLOAD#<uid>``: a file of the client, ``pending`` until its S3 event confirms it.

    A pending reservation holds a slot until ``lapses_at`` (epoch seconds: the presigned POST's expiry
    plus a grace period). Not the table's TTL attribute on purpose: a TTL deletion would leak the slot.
    The Client Log's profile photo is the confirmed upload with ``profile`` set and the latest
    ``confirmed_at`` (``salon.services.uploads.profile_photo_of``).
    """

    upload_id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    status = UnicodeAttribute()  # pending | confirmed
    content_type = UnicodeAttribute()
    size = NumberAttribute()
    filename = UnicodeAttribute(null=True)
    profile = BooleanAttribute(default=False)
    object_key = UnicodeAttribute()  # kept on the item: a merge moves the item, not the object
    thumbnail_key = UnicodeAttribute(null=True)
    version_id = UnicodeAttribute(null=True)  # the S3 version that was confirmed: its links name it
    thumbnail_version_id = UnicodeAttribute(null=True)  # the thumbnail's S3 version (links name it too)
    uploaded_by = UnicodeAttribute()
    system = BooleanAttribute(default=False)  # registered by the system (copies), not by an app
    created_at = UnicodeAttribute()
    confirmed_at = UnicodeAttribute(null=True)
    lapses_at = NumberAttribute(null=True)


def item_from_raw(raw: dict[str, Any]) -> TableItem:
    """A typed item from a low-level DynamoDB image (stream records, cancellation reasons)."""
    return TableItem.from_raw_data(raw)


class Member(TableItem, discriminator="member"):
    """``STUDIO#<sid>`` / ``MEMBER#<pro>``: role, status and the import (and later departure) progress."""

    studio_id = UnicodeAttribute()
    pro_id = UnicodeAttribute()
    role = UnicodeAttribute()
    status = UnicodeAttribute(default="active")  # active | leaving | left
    joined_at = UnicodeAttribute()
    import_status = UnicodeAttribute(default="pending")  # pending | running | done
    import_cursor = UnicodeAttribute(null=True)
    imported = NumberAttribute(default=0)
    merged = NumberAttribute(default=0)
    conflicts = NumberAttribute(default=0)
    # departure (issue 7): status leaving -> left; what each side kept (salon.services.departures)
    left_at = UnicodeAttribute(null=True)
    removed_by = UnicodeAttribute(null=True)
    kept_by_pro = NumberAttribute(null=True)
    kept_by_studio = NumberAttribute(null=True)
    left_with_pro = NumberAttribute(null=True)
    # set by the jobs sweeper while the member's import or departure is being resumed (salon.services.jobs)
    job_state = UnicodeAttribute(null=True)  # stalled
    job_retries = NumberAttribute(null=True)
    job_progress_at = UnicodeAttribute(null=True)


class Invite(TableItem, discriminator="invite"):
    """``INVITE#<code>`` / ``INVITE``: single use; the expiry is checked in the redeeming write's condition."""

    studio_id = UnicodeAttribute()
    role = UnicodeAttribute()
    created_by = UnicodeAttribute()
    expires_at_epoch = NumberAttribute()
    used_by = UnicodeAttribute(null=True)
    studio_country = UnicodeAttribute()
    studio_time_zone = UnicodeAttribute()
    studio_plan = UnicodeAttribute(default="basic")


class ImportConflict(TableItem, discriminator="conflict"):
    """``STUDIO#<sid>`` / ``CONFLICT#<pro>#<cid>``: phone matched one studio client and email another."""

    pro_id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    linked_client_id = UnicodeAttribute()
    other_client_id = UnicodeAttribute()
    reason = UnicodeAttribute()


class MergeRecord(TableItem, discriminator="merge"):
    """``CLIENT#<survivor>`` / ``MERGE#<old cid>``: who merged what in, and the values the studio's record won over."""

    client_id = UnicodeAttribute()
    merged_client_id = UnicodeAttribute()
    pro_id = UnicodeAttribute()
    merged_at = UnicodeAttribute()
    brought = MapAttribute[str, str](default=dict)  # the pro's values of every field, as JSON strings
    conflicting = MapAttribute[str, str](default=dict)  # fields where the studio value won, the pro's value


class ClientFlags(TableItem, discriminator="flags"):
    """``PRO#<pro>`` / ``CLIENT#<cid>#FLAGS``: the pro's personal marks; the fan-out never writes it."""

    client_id = UnicodeAttribute()
    blocked = BooleanAttribute(default=False)
    changed_at = NumberAttribute(default=0)


class JoinFailures(TableItem, discriminator="joinfail"):
    """``PRO#<pro>`` / ``JOINFAIL#<window>``: failed invite redemptions in one window, for throttling."""

    failures = NumberAttribute(default=0)


class ClientCounts(TableItem, discriminator="counts"):
    """``CLIENT#<cid>`` / ``COUNTS``: how many notes and formulas the client's record holds, each written by the
    note's or formula's own transaction on condition it is below its limit (``salon.data.notes_repo``)."""

    note_count = NumberAttribute(null=True)
    formula_count = NumberAttribute(null=True)


class DuplicateAssignments(TableItem, discriminator="assignment_count"):
    """``PRO#<pro>`` / ``DUPASSIGN#<sid>#<date>``: walk-in assignments of a provider on one studio-local day
    (at most 10, SPEC "Client identity"); expires (TTL) after the day."""

    assigned = NumberAttribute(default=0)


class DepartedClient(TableItem, discriminator="departed"):
    """``STUDIO#<sid>`` / ``DEPARTED#<pro>#<cid>``: how a departure split one studio client, written before
    anything is copied: the pro's new personal id (a retried chunk reuses it) and who keeps it (the member's
    counters are counted from these, so a retried chunk never counts twice)."""

    studio_id = UnicodeAttribute()
    pro_id = UnicodeAttribute()
    client_id = UnicodeAttribute()  # the studio client
    pro_keeps = BooleanAttribute()
    studio_keeps = BooleanAttribute()
    new_client_id = UnicodeAttribute(null=True)  # the pro's personal client, when they keep it


class RunningJob(TableItem, discriminator="job"):
    """``JOBS#<shard>`` / ``<kind>#<job key>``: a job between its first chunk and its last, with the message of its
    next chunk and when it last made progress, for the sweeper (salon.services.jobs). Read raw by its repository."""

    job_kind = UnicodeAttribute()
    job_key = UnicodeAttribute()
    message = UnicodeAttribute()
    token = UnicodeAttribute()
    state = UnicodeAttribute()  # running | stalled
    progress_s = NumberAttribute()
    swept_s = NumberAttribute(null=True)
    retries = NumberAttribute(default=0)
