"""Member values as they cross the service boundary."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from loyalty.rules.inputs import AwareDatetime

MemberId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$",
        description="The brand's own id for the member (card number, CRM id).",
        examples=["CARD-000123"],
    ),
]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=50)]
Attributes = Annotated[dict[str, Any], msgspec.Meta(max_length=64)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(max_length=320, examples=["mei@example.com"])]
Phone = Annotated[str, msgspec.Meta(max_length=32, examples=["+8613800138000"])]
Locale = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")]
TimeZone = Annotated[str, msgspec.Meta(max_length=64, examples=["Asia/Shanghai"])]
QuietHours = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Do-not-contact hours in the member's time zone, e.g. 22:00-08:00.",
    ),
]


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ERASED = "erased"


class NewMember(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    member_id: MemberId
    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    birthday: date | None = None
    timezone: TimeZone = "UTC"
    locale: Locale | None = None
    marketing_consent: bool = False
    quiet_hours: QuietHours | None = None
    attributes: Attributes = msgspec.field(default_factory=dict)
    tags: Tags = msgspec.field(default_factory=list)
    # For members migrated from an earlier system; new sign-ups join now.
    joined_at: AwareDatetime | None = None
    # Another member's referral code: links the referral (rewarded on a qualifying
    # first purchase, per the programme's referral rules).
    referred_by: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class MemberChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A partial update: a field left out is unchanged; null clears it."""

    name: Name | msgspec.UnsetType | None = msgspec.UNSET
    email: Email | msgspec.UnsetType | None = msgspec.UNSET
    phone: Phone | msgspec.UnsetType | None = msgspec.UNSET
    birthday: date | msgspec.UnsetType | None = msgspec.UNSET
    timezone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    locale: Locale | msgspec.UnsetType | None = msgspec.UNSET
    marketing_consent: bool | msgspec.UnsetType = msgspec.UNSET
    quiet_hours: QuietHours | msgspec.UnsetType | None = msgspec.UNSET
    attributes: Attributes | msgspec.UnsetType = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET


class StatusChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Erasing is not a status change: it is POST /v1/members/{id}/erase, admin only.
    status: Literal["active", "suspended"]
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class Member(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    status: MemberStatus
    referral_code: str
    name: str | None
    email: str | None
    phone: str | None
    birthday: date | None
    timezone: str
    locale: str | None
    marketing_consent: bool
    quiet_hours: str | None
    attributes: dict[str, Any]
    tags: list[str]
    joined_at: datetime
    created_at: datetime
    updated_at: datetime


class MemberQuery(msgspec.Struct, frozen=True, kw_only=True):
    email: str | None = None
    phone: str | None = None
    tag: str | None = None
    after: str | None = None
    limit: int = 50


class MemberPage(msgspec.Struct, frozen=True):
    items: list[Member]
    next_cursor: str | None
