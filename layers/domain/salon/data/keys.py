"""Every key of the single table is built here, and only here.

Callers pass ids that were already validated (ULIDs, pro ids); nothing from a
request reaches a key without passing the schema first.
"""

from __future__ import annotations

PROFILE = "PROFILE"
UNIQUE = "UNIQUE"
STUDIO = "STUDIO"


def pro_pk(pro_id: str) -> str:
    return f"PRO#{pro_id}"


def client_pk(client_id: str) -> str:
    return f"CLIENT#{client_id}"


def studio_pk(studio_id: str) -> str:
    return f"STUDIO#{studio_id}"


def view_sk(client_id: str) -> str:
    """A pro's view of a client, in the pro's own partition."""
    return f"CLIENT#{client_id}"


def flags_sk(client_id: str) -> str:
    """The pro's personal marks on a client (blocked...): a sibling the fan-out never overwrites."""
    return f"CLIENT#{client_id}#FLAGS"


def checkin_sk(local_date: str) -> str:
    """A client's check-ins on one studio-local date (``YYYY-MM-DD``): deterministic, so a read can name it."""
    return f"CHECKIN#{local_date}"


# -- history: appointments, the providers' time slots, sales (issue 6)
APPOINTMENT_PREFIX = "APPT#"
PURCHASE_PREFIX = "PURCHASE#"
PACKAGE_PREFIX = "PKG#"
GIFT_CARD_PREFIX = "GIFT#"
UPLOAD_PREFIX = "UPLOAD#"


def appointment_sk(appointment_id: str) -> str:
    """An appointment in its client's collection, keyed by id alone so an action is one keyed write."""
    return f"{APPOINTMENT_PREFIX}{appointment_id}"


def slot_sk(utc_minute: str) -> str:
    """One 5-minute slot of a provider's time (``yyyy-mm-ddThh:mm`` in UTC), in the provider's partition."""
    return f"SLOT#{utc_minute}"


def purchase_sk(purchase_id: str) -> str:
    return f"{PURCHASE_PREFIX}{purchase_id}"


def package_sk(package_id: str) -> str:
    return f"{PACKAGE_PREFIX}{package_id}"


def gift_card_sk(gift_card_id: str) -> str:
    return f"{GIFT_CARD_PREFIX}{gift_card_id}"


ALIAS = "ALIAS"
COUNTS = "COUNTS"  # CLIENT#<cid> / COUNTS: how many notes and formulas the record holds (their limits)


def client_id_from_view_sk(sk: str) -> str:
    return sk.split("#", 2)[1]


def book_owner_for_pro(pro_id: str) -> str:
    """The owner key of a solo pro's book."""
    return pro_pk(pro_id)


def book_owner_for_studio(studio_id: str) -> str:
    return studio_pk(studio_id)


def book_pk(owner: str) -> str:
    """gsi1pk of a book's client list, ordered by folded name."""
    return f"BOOK#{owner}"


def book_name_sk(folded_name: str, client_id: str) -> str:
    return f"NAME#{folded_name}#{client_id}"


def unique_phone_pk(owner: str, e164: str) -> str:
    return f"BOOK#{owner}#PHONE#{e164}"


def unique_email_pk(owner: str, email: str) -> str:
    return f"BOOK#{owner}#EMAIL#{email}"


def feed_pk(pro_id: str) -> str:
    """gsi2pk of a pro's change feed."""
    return f"FEED#{pro_id}"


def feed_sk(changed_at_us: int, client_id: str) -> str:
    """gsi2sk: microseconds since the epoch, zero-padded so it sorts as text."""
    return f"{changed_at_us:017d}#{client_id}"


NOTE_PREFIX = "NOTE#"
FORMULA_PREFIX = "FORMULA#"
FORMULA_VERSION_DIGITS = 6


def note_sk(note_id: str) -> str:
    """A note in its client's collection; ULIDs sort by creation, so a reverse Query is newest first."""
    return f"{NOTE_PREFIX}{note_id}"


def formula_sk(formula_id: str, version: int) -> str:
    """One version of a colour formula; the zero-padded version sorts as text."""
    return f"{FORMULA_PREFIX}{formula_id}#{version:0{FORMULA_VERSION_DIGITS}d}"


def formula_prefix(formula_id: str) -> str:
    """Every version of one formula (a ``begins_with`` prefix)."""
    return f"{FORMULA_PREFIX}{formula_id}#"


# -- studios and membership
def member_sk(pro_id: str) -> str:
    return f"MEMBER#{pro_id}"


def invite_pk(code: str) -> str:
    return f"INVITE#{code}"


INVITE = "INVITE"


def conflict_sk(pro_id: str, client_id: str) -> str:
    """An import conflict: one item each, so a member item stays far below 400 KB."""
    return f"CONFLICT#{pro_id}#{client_id}"


def merge_sk(old_client_id: str) -> str:
    """In the survivor's collection: what a merged-away client brought, conflicting values included."""
    return f"MERGE#{old_client_id}"


def join_failures_sk(window: int) -> str:
    """Failed invite redemptions of one pro in one time window (throttling)."""
    return f"JOINFAIL#{window}"


QUOTA = "QUOTA"


def upload_sk(upload_id: str) -> str:
    """A file of a client (pending or confirmed), in the client's item collection."""
    return f"{UPLOAD_PREFIX}{upload_id}"


def departed_prefix(pro_id: str) -> str:
    return f"DEPARTED#{pro_id}#"


def departed_sk(pro_id: str, client_id: str) -> str:
    """How a departing pro's studio client was split (and their new id for it), in the studio's partition."""
    return f"{departed_prefix(pro_id)}{client_id}"


def duplicate_assignments_sk(studio_id: str, local_date: str) -> str:
    """In a provider's partition: how many studio clients they were assigned on one studio-local date
    (``YYYY-MM-DD``) by registering a walk-in who was already in the book (SPEC "Client identity")."""
    return f"DUPASSIGN#{studio_id}#{local_date}"


JOB_SHARDS = 8  # the running jobs' registry is spread over this many partitions (a departure starts hundreds)


def jobs_pk(shard: int) -> str:
    """One partition of the registry of running jobs, which the sweeper reads back (salon.services.jobs)."""
    return f"JOBS#{shard}"


def job_sk(kind: str, job_key: str) -> str:
    """A running job: its kind and the ids it works on (``<studio>#<pro>``, a client id...)."""
    return f"{kind}#{job_key}"
