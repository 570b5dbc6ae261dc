"""Click-through: accepting the terms, optionally with a name and e-mail address."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from capport.auth.records import Contact

# The click-through form's name and e-mail fields: hidden, optional or required.
DetailsMode = Literal["off", "optional", "required"]

MAX_NAME_CHARS = 100
# RFC 5321 section 4.5.3.1.3 limits a path to 256 octets including the
# angle brackets, so an address has at most 254 characters.
MAX_EMAIL_CHARS = 254

# One "@", a local part and a domain with at least one dot, and no spaces or
# angle brackets. Deliverability can only be shown by sending mail.
_EMAIL = re.compile(r"^[^\s@<>]+@[^\s@<>]+\.[^\s@<>.]+$")


@dataclass(frozen=True, slots=True)
class DetailsProblem:
    """A field of the click-through form that is missing or invalid."""

    field: str
    message: str


def read_contact(
    mode: DetailsMode, name: str, email: str
) -> tuple[Contact | None, list[DetailsProblem]]:
    """Validate the name and e-mail fields under mode.

    Returns the contact to store (None when mode is "off" or both fields are
    empty) and the problems to show, one per field.
    """
    if mode == "off":
        return None, []
    name = _clean(name)
    email = _clean(email)
    problems = []
    if not name and mode == "required":
        problems.append(DetailsProblem("name", "Enter your name."))
    elif len(name) > MAX_NAME_CHARS:
        problems.append(
            DetailsProblem(
                "name", f"Enter a name of at most {MAX_NAME_CHARS} characters."
            )
        )
    if not email and mode == "required":
        problems.append(DetailsProblem("email", "Enter your e-mail address."))
    elif email and not is_valid_email(email):
        problems.append(
            DetailsProblem(
                "email", "Enter an e-mail address in the form name@example.com."
            )
        )
    if problems:
        return None, problems
    if not name and not email:
        return None, []
    return Contact(name or None, email or None), []


def is_valid_email(value: str) -> bool:
    """Tell whether value has the shape of an e-mail address."""
    return len(value) <= MAX_EMAIL_CHARS and bool(_EMAIL.match(value))


def _clean(value: str) -> str:
    # Control characters would end up in CSV exports and log viewers.
    text = unicodedata.normalize("NFC", value).strip()
    return "".join(char for char in text if char.isprintable())
