"""Normalising the contact details that identify a client inside a book."""

from __future__ import annotations

import unicodedata

from salon.errors import field_error


def normalise_phone(raw: str, country: str) -> str:
    """E.164 of ``raw`` read in ``country``'s numbering plan, or a 422 naming ``phone``."""
    import phonenumbers  # on first use: most requests never read a phone number

    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        raise field_error("body", "phone", "Not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise field_error("body", "phone", f"Not a valid phone number for {country}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """Trimmed and lower-cased; a 422 naming ``email`` when it cannot be an address."""
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email) or "#" in email:
        raise field_error("body", "email", "Not an email address.")
    return email


def fold_name(name: str) -> str:
    """A name as the prefix search compares it: case and accents folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())
