import pytest

from salon.errors import Unprocessable
from salon.services.contact import fold_name, normalise_email, normalise_phone, require_visible_name


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


# -- what a person sees (SPEC "Client identity": NFKC, zero-width and bidi controls, IDNA emails)
@pytest.mark.parametrize(
    ("raw", "email"),
    [
        ("ana@bücher.de", "ana@xn--bcher-kva.de"),
        ("ANA@BÜCHER.DE", "ana@xn--bcher-kva.de"),
        ("ana@xn--bcher-kva.de", "ana@xn--bcher-kva.de"),
        (
            "\uff41\uff4e\uff41\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
            "ana@example.com",
        ),
        ("\ufeffa\u200bn\u200ca\u200d@exam\u2060ple.com\u200e", "ana@example.com"),
        ("\u202eana@example.com\u202c", "ana@example.com"),
        ("ana@stra\u00dfe.de", "ana@xn--strae-oqa.de"),  # IDNA 2008: ß is not ss
        ("José@Example.com", "josé@example.com"),  # the local part: NFKC and lower case
        ("Jose\u0301@example.com", "josé@example.com"),
    ],
)
def test_emails_compare_by_their_visible_idna_lower_cased_form(raw: str, email: str) -> None:
    assert normalise_email(raw) == email


@pytest.mark.parametrize(
    "raw",
    [
        "Ana.Lopez+tag@Example.COM",
        "o'brien@sub.example.co.uk",
        "a_b-c@foo_bar.example",  # ASCII domains are kept as they were (stored uniqueness keys still match)
        "x@xn--bcher-kva.de",
    ],
)
def test_ascii_emails_normalise_exactly_as_before(raw: str) -> None:
    assert normalise_email(raw) == raw.strip().lower()


@pytest.mark.parametrize("raw", ["ana@b\u00fccher..de", "ana@-b\u00fccher.de", "a@b@example.com", "\u200b@example.com"])
def test_a_domain_idna_refuses_or_a_second_at_is_a_422(raw: str) -> None:
    with pytest.raises(Unprocessable) as err:
        normalise_email(raw)
    assert err.value.details[0]["loc"] == ["body", "email"]


def test_phones_ignore_invisible_and_full_width_characters() -> None:
    assert normalise_phone("\u202d+1 415\u200b555\u20602671\ufeff", "US") == "+14155552671"
    assert (
        normalise_phone("\uff08\uff14\uff11\uff15\uff09\uff15\uff15\uff15\uff0d\uff12\uff16\uff17\uff11", "US")
        == "+14155552671"
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("José Álvarez", "  jose\u200b   ALVAREZ "),
        ("Ana", "\u202eAna\u202c"),
        ("Ana María", "Ana\u00a0Mari\u0301a"),  # no-break space, combining accent
        ("\ufb01ona", "Fiona"),  # ligature (NFKC)
        ("\uff2d\uff41\uff52\uff49\uff41", "maria"),  # full width
        ("Ana", "A\u00adna"),  # soft hyphen
    ],
)
def test_names_fold_to_what_a_person_sees(a: str, b: str) -> None:
    assert fold_name(a) == fold_name(b)


def test_ascii_names_fold_as_before() -> None:
    assert fold_name("  Mary-Jane  O'Neil ") == "mary-jane o'neil"


@pytest.mark.parametrize("name", ["\u200b", "\u200b\u200c\u200d\ufeff", "\u202a\u202e\u2066\u2069", "\u00ad", "\u3164"])
def test_a_name_made_only_of_invisible_characters_is_a_422(name: str) -> None:
    with pytest.raises(Unprocessable) as err:
        require_visible_name(name)
    assert err.value.details[0]["loc"] == ["body", "name"]


def test_an_email_with_the_domains_trailing_dot_is_the_same_address() -> None:
    """``example.com.`` is the fully qualified form of ``example.com``: an adversarial pass registered
    ``vera@example.com.`` next to ``vera@example.com`` as a second client."""
    assert normalise_email("Vera@Example.com.") == "vera@example.com"


@pytest.mark.parametrize("raw", ["vera@example..com", "vera@.example.com", "vera@example.com.."])
def test_an_email_domain_with_an_empty_label_is_a_422(raw: str) -> None:
    with pytest.raises(Unprocessable) as err:
        normalise_email(raw)
    assert err.value.details[0]["loc"] == ["body", "email"]


def test_a_name_of_variation_selectors_only_is_invisible() -> None:
    """U+FE0F picks an emoji's style and shows nothing by itself (category Mn, not Cf)."""
    with pytest.raises(Unprocessable):
        require_visible_name("\ufe0f\ufe0f")
    assert fold_name("Ana\ufe0f") == fold_name("Ana")
