"""Normalising and checking member fields; every problem is reported with its field."""

from __future__ import annotations

import functools
import secrets
from datetime import date
from zoneinfo import available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from loyalty.errors import FieldError

OLDEST_BIRTH_YEAR = 1900
# No look-alikes (0/O, 1/I/L, U/V): codes are read aloud and typed from receipts.
REFERRAL_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
REFERRAL_CODE_LENGTH = 12  # ~58 bits: not guessable, still typeable


class FieldErrors:
    """Collects every field problem so the caller hears about all of them at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, code: str, message: str) -> None:
        self.errors.append(FieldError(field, code, message))


def normalise_email(value: str, errors: FieldErrors) -> str | None:
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        errors.add("email", "invalid_email", str(exc))
        return None
    # Lower-case the whole address so that lookup by email matches however it was typed.
    return checked.normalized.lower()


def normalise_phone(value: str, region: str | None, errors: FieldErrors) -> str | None:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        hint = "" if region else " (give it in international form, e.g. +8613800138000)"
        errors.add("phone", "invalid_phone", f"not a phone number: {value!r}{hint}")
        return None
    if not phonenumbers.is_valid_number(number):
        errors.add("phone", "invalid_phone", f"not a valid phone number: {value!r}")
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_timezone(value: str, errors: FieldErrors) -> None:
    if value not in _zones():
        errors.add("timezone", "unknown_timezone", f"unknown IANA time zone {value!r}")


def check_birthday(value: date, today: date, errors: FieldErrors) -> None:
    if value > today:
        errors.add("birthday", "impossible_birthday", f"birthday {value} is in the future")
    elif value.year < OLDEST_BIRTH_YEAR:
        errors.add("birthday", "impossible_birthday", f"birthday {value} is before 1900")


def normalise_tags(tags: list[str]) -> list[str]:
    # Order-preserving de-duplication: tags are a set, but a stable order reads better.
    return list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())
