import pytest

from salon.errors import Unauthorized, Unprocessable
from salon.identity import caller_from_event
from salon.schemas.common import decode_cursor, encode_cursor


def _event(claims: dict[str, str]) -> dict[str, object]:
    return {"requestContext": {"authorizer": {"jwt": {"claims": claims}}}}


def test_caller_comes_from_the_authorizers_claims() -> None:
    caller = caller_from_event(_event({"sub": "alice", "cognito:groups": "[operators admins]"}))
    assert caller.pro_id == "alice"
    assert caller.is_operator


@pytest.mark.parametrize(
    ("claim", "groups"),
    [
        # HTTP API's serialisation of ["ops,operators", "admins"]: a comma is part of a Cognito group name
        ("[ops,operators admins]", {"ops,operators", "admins"}),
        ("[ops,operators]", {"ops,operators"}),
        ('["operators"]', {'"operators"'}),  # quotes too (\p{P}): a group named "operators" with its quotes
        ("[operators]", {"operators"}),
        (["ops,operators"], {"ops,operators"}),  # a real list, as a direct invocation passes it
        ("[]", set()),
    ],
)
def test_groups_are_read_exactly_as_the_authorizer_passes_them(claim: object, groups: set[str]) -> None:
    caller = caller_from_event(_event({"sub": "ops", "cognito:groups": claim}))  # type: ignore[dict-item]
    assert caller.groups == frozenset(groups)
    assert caller.is_operator == ("operators" in groups)


def test_no_groups_is_not_an_operator() -> None:
    assert not caller_from_event(_event({"sub": "alice"})).is_operator


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": "PRO#x"}, {"sub": "a/b"}])
def test_missing_or_unsafe_subject_is_401(claims: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        caller_from_event(_event(claims))


def test_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor({"after": "01ABC"})) == {"after": "01ABC"}


@pytest.mark.parametrize("bad", ["%%%", "bm90IGpzb24", "WzFd", "eyJhIjogMX0"])
def test_a_cursor_we_did_not_give_is_422(bad: str) -> None:
    with pytest.raises(Unprocessable) as err:
        decode_cursor(bad)
    assert err.value.details[0]["loc"] == ["query", "cursor"]
