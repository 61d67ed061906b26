"""Normalising the contact details that identify a client inside a book.

Matching ignores what a person cannot see (SPEC "Client identity"): every value is read in Unicode NFKC
(full-width digits and letters, ligatures and compatibility spaces become their plain forms) with the
characters that render as nothing removed: zero-width and joiner characters, bidirectional controls, the
byte-order mark, the soft hyphen, every other format character (Unicode category ``Cf``) and the Hangul
fillers. ASCII values normalise exactly as before, so the uniqueness items already stored keep matching.
"""

from __future__ import annotations

import unicodedata

from salon.errors import field_error

#: Characters that render blank but are not format characters (category ``Lo``/``So``).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _invisible(char: str) -> bool:
    """Zero-width spaces and joiners (U+200B-U+200D), marks and bidi embeddings, overrides and isolates
    (U+200E-U+200F, U+202A-U+202E, U+2066-U+2069, U+061C), word joiner and invisible operators
    (U+2060-U+2064), BOM (U+FEFF), soft hyphen (U+00AD), tags... all of category ``Cf``; blank fillers;
    and variation selectors (U+FE00-U+FE0F, U+E0100-U+E01EF: marks that only pick a glyph's style)."""
    return (
        char in _BLANK_LETTERS
        or unicodedata.category(char) == "Cf"
        or "\ufe00" <= char <= "\ufe0f"
        or "\U000e0100" <= char <= "\U000e01ef"
    )


def visible(text: str) -> str:
    """``text`` in NFKC with every invisible character removed: what a person reading it sees."""
    if text.isascii() and text.isprintable():
        return text  # the common case costs nothing
    composed = unicodedata.normalize("NFKC", text)
    return "".join(c for c in composed if not _invisible(c))


def normalise_phone(raw: str, country: str) -> str:
    """E.164 of ``raw`` read in ``country``'s numbering plan, or a 422 naming ``phone``."""
    import phonenumbers  # on first use: most requests never read a phone number

    try:
        number = phonenumbers.parse(visible(raw), country)
    except phonenumbers.NumberParseException:
        raise field_error("body", "phone", "Not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise field_error("body", "phone", f"Not a valid phone number for {country}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """The address as the book compares it: trimmed, invisible characters removed, the local part in NFKC
    and lower-cased, the domain lower-cased and IDNA-encoded (``ana@bücher.de`` is
    ``ana@xn--bcher-kva.de``); a 422 naming ``email`` when it cannot be an address."""
    email = visible(raw).strip().lower()
    local, at, domain = email.partition("@")
    if domain.endswith("."):
        domain = domain[:-1]  # the fully qualified form names the same domain (example.com. is example.com)
    if (
        not at
        or not local
        or "@" in domain
        or "." not in domain
        or "" in domain.split(".")
        or any(c.isspace() for c in email)
        or "#" in email
        or any(not c.isprintable() for c in email)
    ):
        raise field_error("body", "email", "Not an email address.")
    if not domain.isascii():
        domain = _idna(domain)
    return f"{local}@{domain}"


def _idna(domain: str) -> str:
    """An internationalised domain as its A-labels (IDNA 2008 with the UTS 46 mapping, as browsers use)."""
    import idna  # on first use: only a non-ASCII domain needs it

    try:
        return str(idna.encode(domain, uts46=True, transitional=False).decode("ascii"))
    except (idna.IDNAError, UnicodeError):
        raise field_error("body", "email", "Not an email address: its domain is not a valid name.") from None


def fold_name(name: str) -> str:
    """A name as search and dedup compare it: what is visible of it, case and accents folded, spaces
    collapsed. Empty when nothing of it is visible."""
    decomposed = unicodedata.normalize("NFKD", visible(name))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c) and not _invisible(c))
    return " ".join(stripped.casefold().split())


def require_visible_name(name: str, field: str = "name") -> str:
    """The name folded; a 422 naming ``field`` when it is made only of characters no one can see."""
    folded = fold_name(name)
    if not folded:
        raise field_error("body", field, "A name needs visible characters.")
    return folded
