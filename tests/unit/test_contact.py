import pytest

from salon.errors import Unprocessable
from salon.services.contact import fold_name, normalise_email, normalise_phone


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("+1 415 555 2671", "US", "+14155552671"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 20 7946 0018", "US", "+442079460018"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_phone_is_e164_in_the_books_country(raw: str, country: str, e164: str) -> None:
    assert normalise_phone(raw, country) == e164


@pytest.mark.parametrize("raw", ["12", "not a phone", "+1 555", "555-0000000000000"])
def test_invalid_phone_is_422_naming_the_field(raw: str) -> None:
    with pytest.raises(Unprocessable) as err:
        normalise_phone(raw, "US")
    assert err.value.status == 422
    assert err.value.details[0]["loc"] == ["body", "phone"]


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalise_email("  Ana.Lopez@Example.COM ") == "ana.lopez@example.com"


@pytest.mark.parametrize("raw", ["ana", "ana@", "@example.com", "ana@example", "a na@example.com", "a#b@example.com"])
def test_invalid_email_is_422_naming_the_field(raw: str) -> None:
    with pytest.raises(Unprocessable) as err:
        normalise_email(raw)
    assert err.value.details[0]["loc"] == ["body", "email"]


def test_names_fold_case_accents_and_spaces() -> None:
    assert fold_name("  José   ÁLVAREZ ") == "jose alvarez"
