"""Studios, members and invites: the writes that must hold under concurrency."""

from __future__ import annotations

from typing import Protocol

from salon.data import keys
from salon.data.batch import batch_get
from salon.data.models import Invite, Member, ProProfile, Studio, TableItem
from salon.data.tx import ConditionFailed, TransactionCancelled, Tx, claim_below, n, s, update_item


class AlreadyInStudio(Exception):
    pass


class InviteInvalid(Exception):
    pass


class LastAdmin(Exception):
    pass


class StudiosRepository(Protocol):
    def get_pro(self, pro_id: str) -> ProProfile | None: ...
    def get_studio(self, studio_id: str) -> Studio | None: ...
    def create_studio(self, studio: Studio, member: Member) -> None: ...
    def put_invite(self, invite: Invite) -> None: ...
    def join(self, code: str, member: Member, now_epoch: int, refund_window: int | None = None) -> Invite: ...
    def claim_join_attempt(self, pro_id: str, window: int, allowed: int, expires_epoch: int) -> bool: ...
    def get_member(self, studio_id: str, pro_id: str) -> Member | None: ...
    def list_members(self, studio_id: str, limit: int, after: str | None) -> tuple[list[Member], bool]: ...
    def change_role(self, studio_id: str, pro_id: str, old_role: str, new_role: str) -> None: ...
    def transfer_owner(self, studio_id: str, from_pro: str, to_pro: str) -> None: ...
    def set_pro_plan(self, pro_id: str, plan: str) -> None: ...
    def set_studio_plan(self, studio_id: str, plan: str) -> int: ...


def _pro_membership_update(tx: Tx, pro_id: str, studio: Studio | Invite, studio_id: str, role: str) -> int:
    """Make a pro a member: their profile names the studio. Refused when they are in one already."""
    country = studio.country if isinstance(studio, Studio) else studio.studio_country
    zone = studio.time_zone if isinstance(studio, Studio) else studio.studio_time_zone
    plan = studio.plan if isinstance(studio, Studio) else studio.studio_plan
    return tx.update(
        keys.pro_pk(pro_id),
        keys.PROFILE,
        "SET kind = if_not_exists(kind, :kind), plan = if_not_exists(plan, :basic), studio_id = :sid, "
        "#role = :role, membership_status = :active, studio_country = :country, studio_time_zone = :zone, "
        "studio_plan = :plan REMOVE studio_plan_version",  # a former studio's plan versions mean nothing here
        values={
            ":kind": s("pro"),
            ":basic": s("basic"),
            ":sid": s(studio_id),
            ":role": s(role),
            ":active": s("active"),
            ":country": s(country),
            ":zone": s(zone),
            ":plan": s(plan),
            ":leaving": s("leaving"),
        },
        names={"#role": "role"},
        # not while a departure still splits their clients (salon.services.departures)
        condition="attribute_not_exists(studio_id) AND (attribute_not_exists(membership_status) "
        "OR membership_status <> :leaving)",
    )


class DynamoStudiosRepository:
    def get_pro(self, pro_id: str) -> ProProfile | None:
        pro_key = (keys.pro_pk(pro_id), keys.PROFILE)
        found = batch_get([pro_key], consistent=True).get(pro_key)
        return found if isinstance(found, ProProfile) else None

    def get_studio(self, studio_id: str) -> Studio | None:
        try:
            item = TableItem.get(keys.studio_pk(studio_id), keys.STUDIO, consistent_read=True)
        except TableItem.DoesNotExist:
            return None
        return item if isinstance(item, Studio) else None

    def create_studio(self, studio: Studio, member: Member) -> None:
        tx = Tx()
        tx.put(studio, condition="attribute_not_exists(pk)")
        tx.put(member, condition="attribute_not_exists(pk)")
        pro = _pro_membership_update(tx, member.pro_id, studio, studio.studio_id, member.role)
        try:
            tx.run()
        except TransactionCancelled as exc:
            if exc.failed(pro):
                raise AlreadyInStudio() from None
            raise

    def put_invite(self, invite: Invite) -> None:
        invite.save(condition=TableItem.pk.does_not_exist())

    def join(self, code: str, member: Member, now_epoch: int, refund_window: int | None = None) -> Invite:
        """Redeem the invite, make the pro a member and give the studio their role, all or nothing; with
        ``refund_window``, the attempt claimed in that window's failure count is given back in the same
        transaction (a redeemed code is no failure)."""
        try:
            invite = TableItem.get(keys.invite_pk(code), keys.INVITE, consistent_read=True)
        except TableItem.DoesNotExist:
            raise InviteInvalid() from None
        if not isinstance(invite, Invite) or invite.used_by or invite.expires_at_epoch <= now_epoch:
            raise InviteInvalid()
        member.studio_id = invite.studio_id
        member.role = invite.role
        member.pk = keys.studio_pk(invite.studio_id)
        tx = Tx()
        used = tx.update(
            keys.invite_pk(code),
            keys.INVITE,
            "SET used_by = :pro",
            values={":pro": s(member.pro_id), ":now": n(now_epoch)},
            condition="attribute_exists(pk) AND attribute_not_exists(used_by) AND expires_at_epoch > :now",
        )
        pro = _pro_membership_update(tx, member.pro_id, invite, invite.studio_id, invite.role)
        tx.put(
            member,
            condition="attribute_not_exists(pk) OR #status = :left",
            values={":left": s("left")},
            names={"#status": "status"},
        )
        tx.update(
            keys.studio_pk(invite.studio_id),
            keys.STUDIO,
            "SET member_roles.#pro = :role" + (" ADD admin_count :one" if invite.role == "admin" else ""),
            values={":role": s(invite.role), **({":one": n(1)} if invite.role == "admin" else {})},
            names={"#pro": member.pro_id},
            condition="attribute_exists(pk)",
        )
        if refund_window is not None:
            tx.update(
                keys.pro_pk(member.pro_id),
                keys.join_failures_sk(refund_window),
                "ADD failures :minus",
                values={":minus": n(-1)},
                condition="attribute_exists(failures)",
            )
        try:
            tx.run()
        except TransactionCancelled as exc:
            if exc.failed(pro):
                raise AlreadyInStudio() from None
            if exc.failed(used):
                raise InviteInvalid() from None
            raise
        return invite

    def claim_join_attempt(self, pro_id: str, window: int, allowed: int, expires_epoch: int) -> bool:
        """Count one redemption attempt in the window's failures, unless ``allowed`` are counted already: one
        conditional UpdateItem, so concurrent attempts cannot all read a count below the limit and all go on
        (a read, then a write, let ten concurrent bad codes through where five were allowed)."""
        return claim_below(
            keys.pro_pk(pro_id), keys.join_failures_sk(window), "joinfail", "failures", allowed, expires_epoch
        )

    def get_member(self, studio_id: str, pro_id: str) -> Member | None:
        try:
            item = TableItem.get(keys.studio_pk(studio_id), keys.member_sk(pro_id), consistent_read=True)
        except TableItem.DoesNotExist:
            return None
        return item if isinstance(item, Member) else None

    def list_members(self, studio_id: str, limit: int, after: str | None) -> tuple[list[Member], bool]:
        start = {"pk": {"S": keys.studio_pk(studio_id)}, "sk": {"S": keys.member_sk(after)}} if after else None
        results = TableItem.query(
            keys.studio_pk(studio_id),
            TableItem.sk.startswith("MEMBER#"),
            limit=limit,
            page_size=limit,
            last_evaluated_key=start,
            consistent_read=True,
        )
        members = [m for m in results if isinstance(m, Member)]
        return members, results.last_evaluated_key is not None

    def change_role(self, studio_id: str, pro_id: str, old_role: str, new_role: str) -> None:
        """One transaction; the studio's admin count guards the last admin even when two admins act at once."""
        tx = Tx()
        tx.update(
            keys.studio_pk(studio_id),
            keys.member_sk(pro_id),
            "SET #role = :new",
            values={":new": s(new_role), ":old": s(old_role), ":active": s("active")},
            names={"#role": "role", "#status": "status"},
            condition="#role = :old AND #status = :active",
        )
        tx.update(
            keys.pro_pk(pro_id), keys.PROFILE, "SET #role = :new", values={":new": s(new_role)}, names={"#role": "role"}
        )
        delta = (new_role == "admin") - (old_role == "admin")
        expression = "SET member_roles.#pro = :new" + (" ADD admin_count :delta" if delta else "")
        values = {":new": s(new_role), ":pro": s(pro_id)}
        condition = "owner_id <> :pro"
        if delta:
            values[":delta"] = n(delta)
        if delta < 0:
            values[":one"] = n(1)
            condition += " AND admin_count > :one"
        index = tx.update(
            keys.studio_pk(studio_id),
            keys.STUDIO,
            expression,
            values=values,
            names={"#pro": pro_id},
            condition=condition,
        )
        try:
            tx.run()
        except TransactionCancelled as exc:
            if exc.failed(index):
                raise LastAdmin() from None
            raise

    def transfer_owner(self, studio_id: str, from_pro: str, to_pro: str) -> None:
        tx = Tx()
        tx.update(
            keys.studio_pk(studio_id),
            keys.STUDIO,
            "SET owner_id = :to",
            values={":to": s(to_pro), ":from": s(from_pro), ":admin": s("admin")},
            names={"#to": to_pro},
            condition="owner_id = :from AND member_roles.#to = :admin",
        )
        tx.run()

    def set_pro_plan(self, pro_id: str, plan: str) -> None:
        update_item(
            keys.pro_pk(pro_id),
            keys.PROFILE,
            "SET kind = if_not_exists(kind, :kind), plan = :plan",
            values={":kind": s("pro"), ":plan": s(plan)},
        )

    def set_studio_plan(self, studio_id: str, plan: str) -> int:
        """The studio's new plan; returns the decision's version (one more than the last decision's), which
        the copies on the members' profiles are compared by (D45)."""
        new = update_item(
            keys.studio_pk(studio_id),
            keys.STUDIO,
            "SET plan = :plan ADD plan_version :one",
            values={":plan": s(plan), ":one": n(1)},
            condition="attribute_exists(pk)",
            return_new=True,
        )
        return int(new["plan_version"]["N"])

    def set_member_studio_plan(self, pro_ids: list[str], studio_id: str, plan: str) -> None:
        for pro_id in pro_ids:
            try:
                update_item(
                    keys.pro_pk(pro_id),
                    keys.PROFILE,
                    "SET studio_plan = :plan",
                    values={":plan": s(plan), ":sid": s(studio_id)},
                    condition="studio_id = :sid",
                )
            except ConditionFailed:
                continue  # left the studio meanwhile


repository = DynamoStudiosRepository()
