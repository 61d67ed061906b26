"""Studio rules: creation, plans, invites, joining, roles and ownership."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from salon import clock
from salon.data import keys
from salon.data.models import Invite as InviteItem
from salon.data.models import Member as MemberItem
from salon.data.models import Studio as StudioItem
from salon.data.studios_repo import AlreadyInStudio, InviteInvalid, LastAdmin, StudiosRepository, repository
from salon.data.tx import ConditionFailed, TransactionCancelled
from salon.errors import Conflict, Forbidden, NotFound, TooManyRequests, field_error
from salon.identity import PRO_ID_PATTERN, Caller
from salon.ids import new_id
from salon.schemas.common import decode_cursor, encode_cursor
from salon.schemas.departures import DepartureSummary
from salon.schemas.studios import (
    ImportSummary,
    Invite,
    InviteCreate,
    JoinRequest,
    Member,
    MemberPage,
    PlanOut,
    RoleUpdate,
    StalledJob,
    Studio,
    StudioCreate,
)
from salon.services import jobs

INVITE_TTL = dt.timedelta(days=7)
JOIN_FAILURE_WINDOW_S = 15 * 60
JOIN_FAILURES_ALLOWED = 5


def _require_operator(caller: Caller) -> None:
    if not caller.is_operator:
        raise Forbidden("Only billing operators change plans.", code="operators_only")


def _membership(caller: Caller, studio_id: str, repo: StudiosRepository) -> str:
    """The caller's role in the studio; 404 for anyone who is not an active member (nothing is revealed)."""
    pro = repo.get_pro(caller.pro_id)
    if pro is None or pro.studio_id != studio_id or pro.membership_status != "active" or not pro.role:
        raise NotFound("No such studio.", code="studio_not_found")
    return str(pro.role)


def _require_admin(caller: Caller, studio_id: str, repo: StudiosRepository) -> None:
    if _membership(caller, studio_id, repo) != "admin":
        raise Forbidden("Only studio admins may do this.", code="admin_only")


def create_studio(caller: Caller, data: StudioCreate, repo: StudiosRepository = repository) -> Studio:
    studio_id = new_id()
    studio = StudioItem(keys.studio_pk(studio_id), keys.STUDIO)
    studio.studio_id = studio_id
    studio.name = data.name
    studio.country = data.country
    studio.time_zone = data.time_zone
    studio.plan = "basic"
    studio.owner_id = caller.pro_id
    studio.member_roles = {caller.pro_id: "admin"}
    studio.admin_count = 1
    studio.created_at = clock.now_iso()
    member = _new_member(studio_id, caller.pro_id, "admin")
    try:
        repo.create_studio(studio, member)
    except AlreadyInStudio:
        raise Conflict("You already belong to a studio.", code="already_in_studio") from None
    return _studio_out(studio, "admin")


def get_studio(caller: Caller, studio_id: str, repo: StudiosRepository = repository) -> Studio:
    role = _membership(caller, studio_id, repo)
    studio = repo.get_studio(studio_id)
    if studio is None:
        raise NotFound("No such studio.", code="studio_not_found")
    return _studio_out(studio, role)


def set_studio_plan(caller: Caller, studio_id: str, plan: str, repo: StudiosRepository = repository) -> PlanOut:
    _require_operator(caller)
    try:
        version = repo.set_studio_plan(studio_id, plan)
    except ConditionFailed:
        raise NotFound("No such studio.", code="studio_not_found") from None
    # Members read the plan from their own profile: copy it there, outside the request. The version keeps a
    # late copy of an older decision from overwriting a newer one (D45).
    jobs.enqueue("studio_plan", studio_id=studio_id, plan=plan, plan_version=version)
    return PlanOut(plan=plan)  # type: ignore[arg-type]


def set_pro_plan(caller: Caller, pro_id: str, plan: str, repo: StudiosRepository = repository) -> PlanOut:
    _require_operator(caller)
    repo.set_pro_plan(pro_id, plan)
    return PlanOut(plan=plan)  # type: ignore[arg-type]


def create_invite(caller: Caller, studio_id: str, data: InviteCreate, repo: StudiosRepository = repository) -> Invite:
    _require_admin(caller, studio_id, repo)
    studio = repo.get_studio(studio_id)
    if studio is None:
        raise NotFound("No such studio.", code="studio_not_found")
    code = secrets.token_urlsafe(12)  # 96 random bits
    expires = clock.now() + INVITE_TTL
    invite = InviteItem(keys.invite_pk(code), keys.INVITE)
    invite.studio_id = studio_id
    invite.role = data.role
    invite.created_by = caller.pro_id
    invite.expires_at_epoch = int(expires.timestamp())
    invite.expires_at = expires + dt.timedelta(days=1)  # TTL tidies up; the expiry itself is in the condition
    invite.studio_country = studio.country
    invite.studio_time_zone = studio.time_zone
    invite.studio_plan = studio.plan
    repo.put_invite(invite)
    return Invite(code=code, role=data.role, expires_at=expires)


def join(caller: Caller, data: JoinRequest, repo: StudiosRepository = repository) -> Member:
    """Redeem an invite. Unknown, used and expired codes look the same; repeated failures are throttled."""
    now = int(clock.epoch_s())
    window = now // JOIN_FAILURE_WINDOW_S
    # Every attempt is counted as a failure before the code is looked at, in one conditional write, and given
    # back by the join's own transaction when the code is redeemed: concurrent bad codes past the limit are
    # 429 without being tried (decision D34).
    if not repo.claim_join_attempt(caller.pro_id, window, JOIN_FAILURES_ALLOWED, now + 2 * JOIN_FAILURE_WINDOW_S):
        raise TooManyRequests("Too many invalid invite codes; try again later.", code="too_many_attempts")
    member = _new_member("", caller.pro_id, "provider")
    try:
        repo.join(data.code, member, now, refund_window=window)
    except InviteInvalid:
        raise NotFound("This invite code is not valid.", code="invite_invalid") from None
    except AlreadyInStudio:
        raise Conflict("You already belong to a studio.", code="already_in_studio") from None
    return member_out(member)


def list_members(
    caller: Caller, studio_id: str, limit: int, cursor: str | None, repo: StudiosRepository = repository
) -> MemberPage:
    _membership(caller, studio_id, repo)
    after = decode_cursor(cursor).get("after") if cursor else None
    if after is not None and not re.match(PRO_ID_PATTERN, after):
        raise field_error("query", "cursor", "Not a cursor this API gave out.")
    members, more = repo.list_members(studio_id, limit, after)
    next_cursor = encode_cursor({"after": members[-1].pro_id}) if more and members else None
    return MemberPage(items=[member_out(m) for m in members], next_cursor=next_cursor)


def get_member(caller: Caller, studio_id: str, pro_id: str, repo: StudiosRepository = repository) -> Member:
    if caller.pro_id != pro_id:  # a pro reads their own membership even after leaving (departure progress)
        _membership(caller, studio_id, repo)
    member = repo.get_member(studio_id, pro_id)
    if member is None and caller.pro_id == pro_id:
        raise NotFound("No such studio.", code="studio_not_found")
    if member is None:
        raise NotFound("No such member.", code="member_not_found")
    return member_out(member)


def change_role(
    caller: Caller, studio_id: str, pro_id: str, data: RoleUpdate, repo: StudiosRepository = repository
) -> Member:
    _require_admin(caller, studio_id, repo)
    member = repo.get_member(studio_id, pro_id)
    if member is None or member.status != "active":
        raise NotFound("No such member.", code="member_not_found")
    if member.role != data.role:
        try:
            repo.change_role(studio_id, pro_id, member.role, data.role)
        except LastAdmin:
            raise Conflict(
                "The owner's role cannot change, and a studio keeps at least one admin.", code="last_admin"
            ) from None
        except TransactionCancelled:
            raise Conflict("The member changed meanwhile; read it again.", code="member_changed") from None
        member.role = data.role
    return member_out(member)


def transfer_ownership(caller: Caller, studio_id: str, to_pro: str, repo: StudiosRepository = repository) -> Studio:
    _membership(caller, studio_id, repo)
    studio = repo.get_studio(studio_id)
    if studio is None:
        raise NotFound("No such studio.", code="studio_not_found")
    if studio.owner_id != caller.pro_id:
        raise Forbidden("Only the owner hands over ownership.", code="owner_only")
    try:
        repo.transfer_owner(studio_id, caller.pro_id, to_pro)
    except TransactionCancelled:
        raise Conflict("Ownership goes to another admin of the studio.", code="not_an_admin") from None
    studio.owner_id = to_pro
    return _studio_out(studio, "admin")


def _new_member(studio_id: str, pro_id: str, role: str) -> MemberItem:
    member = MemberItem(keys.studio_pk(studio_id), keys.member_sk(pro_id))
    member.studio_id = studio_id
    member.pro_id = pro_id
    member.role = role
    member.status = "active"
    member.joined_at = clock.now_iso()
    member.import_status = "pending"
    member.imported = 0
    member.merged = 0
    member.conflicts = 0
    return member


def member_out(member: MemberItem) -> Member:
    return Member.model_validate(
        {
            "studio_id": member.studio_id,
            "pro_id": member.pro_id,
            "role": member.role,
            "status": member.status,
            "joined_at": member.joined_at,
            "import": ImportSummary(
                status=member.import_status,  # type: ignore[arg-type]
                imported=int(member.imported or 0),
                merged=int(member.merged or 0),
                conflicts=int(member.conflicts or 0),
            ),
            "departure": _departure(member),
            "stalled": _stalled(member),
        }
    )


def _stalled(member: MemberItem) -> StalledJob | None:
    """The sweeper's mark, while the job it names is still unfinished."""
    if member.job_state != "stalled":
        return None
    if member.status == "leaving":
        job = "departure"
    elif member.status == "active" and member.import_status != "done":
        job = "import"
    else:
        return None
    return StalledJob(
        job=job,  # type: ignore[arg-type]
        retries=int(member.job_retries or 0),
        last_progress_at=member.job_progress_at,  # type: ignore[arg-type]
    )


def _departure(member: MemberItem) -> DepartureSummary | None:
    if member.status == "active":
        return None
    return DepartureSummary(
        status="running" if member.status == "leaving" else "done",
        kept_by_pro=int(member.kept_by_pro or 0),
        kept_by_studio=int(member.kept_by_studio or 0),
        left_with_pro=int(member.left_with_pro or 0),
    )


def _studio_out(studio: StudioItem, role: str) -> Studio:
    return Studio(
        studio_id=studio.studio_id,
        name=studio.name,
        country=studio.country,
        time_zone=studio.time_zone,
        plan=studio.plan,  # type: ignore[arg-type]
        owner_id=studio.owner_id,
        role=role,  # type: ignore[arg-type]
    )
