"""A pro's view of a client: the profile as that pro may see it."""

from __future__ import annotations

from typing import Any

from salon.data import keys
from salon.data.models import ClientProfile, ClientView

_COPIED = (
    "name",
    "name_folded",
    "birthday",
    "tags",
    "allergies",
    "marketing_consent",
    "version",
    "created_at",
    "updated_at",
    "client_id",
    "owner",
)


def build_view(profile: ClientProfile, pro_id: str, *, masked: bool, changed_at_us: int) -> ClientView:
    view = ClientView(keys.pro_pk(pro_id), keys.view_sk(profile.client_id))
    for name in _COPIED:
        setattr(view, name, getattr(profile, name))
    view.phone = None if masked else profile.phone
    view.email = None if masked else profile.email
    view.masked = masked
    view.changed_at = changed_at_us
    view.gsi2pk = keys.feed_pk(pro_id)
    view.gsi2sk = keys.feed_sk(changed_at_us, profile.client_id)
    return view


def view_item_for(template: dict[str, Any], pro_id: str) -> dict[str, Any]:
    """A serialized view built for any pro, as ``pro_id``'s item: a view differs from pro to pro only in its
    keys (its partition and its change-feed partition), so fan-out builds one and re-keys it."""
    return {**template, "pk": {"S": keys.pro_pk(pro_id)}, "gsi2pk": {"S": keys.feed_pk(pro_id)}}
