"""What each kind of scheduled gift needs: which members to read (a narrow SQL
filter), which occasions fall on the days in view, who is eligible, how many points."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, exists, extract, false, func, or_

from loyalty.db.engine import Database, json_array_contains
from loyalty.db.schema import members, orders
from loyalty.rules import Program
from loyalty.rules.calendars import parse_custom_date, zone
from loyalty.rules.schema import CampaignSpec, as_list
from loyalty.scheduler import occasions
from loyalty.scheduler.occasions import Occasion


@dataclass
class Sweep:
    """One kind of gift over the members: birthday, anniversary or a holiday campaign."""

    campaign: str
    kind: str  # the notice kind, e.g. birthday_gift
    template: str
    where: list[ColumnElement[bool]]
    occasions_of: Callable[[Any], list[Occasion]]
    points_for: Callable[[str | None], int]
    expires_after_days: int | None = None
    tiers: frozenset[str] = field(default_factory=frozenset)
    reward: str | None = None  # a catalog reward given as a coupon


def member_zone(row: Any) -> ZoneInfo:
    try:
        return zone(row.timezone)
    except (KeyError, ValueError):  # a zone removed from tzdata since the member joined
        return zone("UTC")


def sweeps(db: Database, program: Program, days: list[date]) -> list[Sweep]:
    section = program.spec.scheduled
    benefits = {tier.id: tier.benefits.birthday_points for tier in program.spec.tiers}
    out: list[Sweep] = []
    if section.birthday is not None:
        spec = section.birthday

        def birthday_points(tier: str | None) -> int:
            if tier in spec.points_by_tier:
                return spec.points_by_tier[tier]
            from_benefits = benefits.get(tier) if tier is not None else None
            return from_benefits if from_benefits is not None else spec.points

        codes = {m * 100 + d for m, d in occasions.birthday_month_days(spec, days)}
        birthday = members.c.birthday
        out.append(
            Sweep(
                campaign="birthday",
                kind="birthday_gift",
                template=spec.template,
                where=[
                    birthday.is_not(None),
                    (extract("month", birthday) * 100 + extract("day", birthday)).in_(codes),
                ],
                occasions_of=lambda row: occasions.birthday_occasion(row.birthday, spec, days),
                points_for=birthday_points,
                expires_after_days=spec.expires_after_days,
                reward=spec.reward,
            )
        )
    if section.anniversary is not None:
        anniversary = section.anniversary
        # joined_at is UTC; the member's local day may be a day either side.
        near = {day + timedelta(days=n) for day in days for n in (-1, 0, 1)}
        codes = {day.month * 100 + day.day for day in near}
        codes |= {229} if 228 in codes else set()
        out.append(
            Sweep(
                campaign="anniversary",
                kind="anniversary_gift",
                template=anniversary.template,
                where=[_utc_month_day(db, members.c.joined_at).in_(codes)],
                occasions_of=lambda row: occasions.anniversary_occasion(
                    row.joined_at.astimezone(member_zone(row)).date(), days
                ),
                points_for=lambda tier: anniversary.points_by_tier.get(
                    tier or "", anniversary.points
                ),
                expires_after_days=anniversary.expires_after_days,
                reward=anniversary.reward,
            )
        )
    custom = {
        name: parse_custom_date(as_list(values))[0]
        for name, values in program.spec.custom_dates.items()
    }
    for campaign in section.holidays:
        on = occasions.campaign_days(campaign, custom, days)
        if on:
            out.append(_campaign_sweep(db, campaign, on))
    return out


def _campaign_sweep(db: Database, campaign: CampaignSpec, on: list[date]) -> Sweep:
    where: list[ColumnElement[bool]] = []
    if campaign.consent_required:
        where.append(members.c.marketing_consent.is_(True))
    if campaign.active_within_days is not None:
        # Activity: an order in the N days before the (first) occasion in this sweep.
        since = datetime.combine(min(on), time(0), UTC) - timedelta(
            days=campaign.active_within_days
        )
        where.append(
            exists().where(orders.c.member_id == members.c.id, orders.c.occurred_at >= since)
        )
    if campaign.tags:
        where.append(
            or_(false(), *(json_array_contains(db, members.c.tags, t) for t in campaign.tags))
        )
    return Sweep(
        campaign=campaign.id,
        kind="holiday_gift",
        template=campaign.template or campaign.id,
        where=where,
        occasions_of=lambda _row: [
            Occasion(campaign.id, f"{campaign.id}:{day.year}", day) for day in on
        ],
        points_for=lambda tier: campaign.points_by_tier.get(tier or "", campaign.points),
        expires_after_days=campaign.expires_after_days,
        tiers=frozenset(campaign.tiers),
        reward=campaign.reward,
    )


def _utc_month_day(db: Database, column: ColumnElement[Any]) -> ColumnElement[int]:
    """month * 100 + day of a UTC timestamp column. PostgreSQL would otherwise use the
    session's time zone; SQLite stores naive UTC text."""
    value = column if db.is_sqlite else func.timezone("UTC", column)
    return extract("month", value) * 100 + extract("day", value)
