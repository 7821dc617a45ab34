"""The programme file format, as msgspec Structs.

Every Struct forbids unknown fields so a misspelt key is an error, never silently ignored.
Polymorphism is keyed by which field is present (`award: {fixed: 50}` versus
`award: {per_amount: "1.00"}`) rather than a `kind:` tag: that reads naturally for a
marketer, and the compiler checks that exactly one form is used.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from croniter import croniter

from .inputs import EventType, LineItem

OneOrMany = str | list[str]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Rounding = Literal["floor", "round-half-up", "ceil"]
Period = Literal["day", "week", "month", "year", "lifetime"]
Clock = Literal["member", "store", "program"]
# Bounds the engine relies on (a count of 0 points to pay with divides by zero; a
# negative number of days makes what it grants expire before it is given).
Count = Annotated[int, msgspec.Meta(ge=0)]
AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
Days = Annotated[int, msgspec.Meta(ge=1, le=36_500)]


class Spec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class TierQualify(Spec):
    """Reaching any one of these within the tier window qualifies for the tier."""

    spend: Decimal | None = None
    points: Count | None = None
    orders: Count | None = None

    def __post_init__(self) -> None:
        if self.spend is None and self.points is None and self.orders is None:
            raise ValueError("qualify needs at least one of: spend, points, orders")
        if self.spend is not None and not (self.spend.is_finite() and self.spend >= 0):
            raise ValueError("spend must be an amount of 0 or more")


class TierBenefits(Spec):
    # Rules apply earn multipliers (`when: {tier: [gold]}`); this figure is what the
    # app shows. Birthday points and redeemable rewards are read by later features.
    earn_multiplier: Decimal | None = None
    birthday_points: int | None = None
    rewards: list[str] = msgspec.field(default_factory=list)
    perks: list[str] = msgspec.field(default_factory=list)


class TierSpec(Spec):
    id: str
    name: str | None = None
    qualify: TierQualify | None = None
    benefits: TierBenefits = msgspec.field(default_factory=TierBenefits)


class TierPolicySpec(Spec):
    """How tier figures are counted and when tiers are reviewed.

    Figures (qualifying spend net of refunds, points earned by rules, orders) count
    over the window: the last `days` days, the calendar year, or the membership year.
    Upgrades happen as soon as an event qualifies; downgrades only at review, the
    end of the window, after `grace_days`.
    """

    window: Literal["rolling_days", "calendar_year", "membership_year"] = "calendar_year"
    days: int | None = None
    downgrade: Literal["one_step", "to_qualified"] = "one_step"
    grace_days: Annotated[int, msgspec.Meta(ge=0, le=36_500)] = 0

    def __post_init__(self) -> None:
        if self.window == "rolling_days" and (self.days is None or self.days < 1):
            raise ValueError("window rolling_days needs `days` (1 or more)")
        if self.window != "rolling_days" and self.days is not None:
            raise ValueError(f"`days` only goes with window rolling_days, not {self.window}")


class StoreSpec(Spec):
    timezone: str
    name: str | None = None


class AmountRange(Spec):
    min: Decimal | None = None
    max: Decimal | None = None


class DayRange(Spec):
    min: int | None = None
    max: int | None = None


class ItemFilter(Spec):
    sku: OneOrMany | None = None
    category: OneOrMany | None = None
    brand: OneOrMany | None = None
    min_quantity: int | None = None
    min_amount: Decimal | None = None


class DateRange(Spec):
    start: date | None = msgspec.field(default=None, name="from")
    end: date | None = msgspec.field(default=None, name="until")


class HoursRange(Spec):
    start: str = msgspec.field(name="from")
    end: str = msgspec.field(name="until")


class HolidaySpec(Spec):
    country: str
    subdiv: str | None = None
    name: OneOrMany | None = None


class ConditionSpec(Spec):
    all: list[ConditionSpec] | None = None
    any: list[ConditionSpec] | None = None
    negate: ConditionSpec | None = msgspec.field(default=None, name="not")
    amount: AmountRange | None = None
    currency: OneOrMany | None = None
    store: OneOrMany | None = None
    channel: OneOrMany | None = None
    payment_method: OneOrMany | None = None
    items: ItemFilter | None = None
    tier: OneOrMany | None = None
    has_tags: OneOrMany | None = None
    member_attribute: dict[str, Any] | None = None
    event_attribute: dict[str, Any] | None = None
    days_since_joined: DayRange | None = None
    birthday: Literal["month", "today"] | None = None
    date_range: DateRange | None = None
    weekdays: list[Weekday] | None = None
    hours: HoursRange | None = None
    holiday: HolidaySpec | None = None
    custom_date: OneOrMany | None = None


class AwardSpec(Spec):
    fixed: int | None = None
    per_amount: Decimal | None = None
    per_item: int | None = None
    percent: Decimal | None = None
    points: int = 1
    rounding: Rounding = "floor"


class LimitSpec(Spec):
    max_points: int | None = None
    max_times: int | None = None
    period: Period | None = None
    rolling_days: int | None = None
    scope: Literal["member", "campaign"] = "member"


class RuleSpec(Spec):
    id: str
    on: EventType
    event: str | None = None
    description: str | None = None
    reason: str | None = None
    priority: int = 0
    when: ConditionSpec | None = None
    expr: str | None = None
    items: ItemFilter | None = None
    clock: Clock = "member"
    award: AwardSpec | None = None
    multiply: Decimal | None = None
    applies_to: OneOrMany | None = None
    tag: OneOrMany | None = None
    pending_days: int | None = None
    expires_after_days: int | None = None
    limits: list[LimitSpec] = msgspec.field(default_factory=list)
    once_per_member: bool = False
    max_per_event: int | None = None
    budget: int | None = None
    group: str | None = None
    stop: bool = False
    active_from: datetime | None = None
    active_until: datetime | None = None


class TestMember(Spec):
    id: str = "test-member"
    tier: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    joined: datetime | None = None
    birthday: date | None = None
    timezone: str | None = None


class TestEvent(Spec):
    type: EventType
    name: str | None = None
    occurred_at: datetime | None = None
    order_id: str | None = None
    store_id: str | None = None
    channel: str | None = None
    currency: str | None = None
    total: Decimal | None = None
    payment_method: str | None = None
    items: list[LineItem] = msgspec.field(default_factory=list)
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)


class TestCounter(Spec):
    rule: str
    value: int
    unit: Literal["points", "times"] = "times"
    scope: Literal["member", "campaign"] = "member"


class TestExpect(Spec):
    points: int | None = None
    pending_points: int | None = None
    rules: list[str] | None = None
    not_rules: list[str] | None = None
    tags: list[str] | None = None


class TestSpec(Spec):
    name: str
    event: TestEvent
    expect: TestExpect
    member: TestMember = msgspec.field(default_factory=TestMember)
    counters: list[TestCounter] = msgspec.field(default_factory=list)


# Sections later features fill in; accepted now so files written today stay valid.
Reserved = dict[str, Any] | None


class ExpirySpec(Spec):
    """When available points expire; each lot on its own, counted from when it was earned."""

    policy: Literal["never", "rolling_months", "end_of_quarter", "end_of_year"] = "never"
    months: int | None = None

    def __post_init__(self) -> None:
        if self.policy == "rolling_months" and (self.months is None or self.months < 1):
            raise ValueError("policy rolling_months needs `months` (1 or more)")
        if self.policy != "rolling_months" and self.months is not None:
            raise ValueError(f"`months` only goes with policy rolling_months, not {self.policy}")


class ReferralQualify(Spec):
    """The referee's first purchase qualifies if it reaches `min_spend` within
    `within_days` of joining."""

    min_spend: Decimal = Decimal(0)
    within_days: Days = 30

    def __post_init__(self) -> None:
        if not (self.min_spend.is_finite() and self.min_spend >= 0):
            raise ValueError("min_spend must be an amount of 0 or more")


class ReferralRewards(Spec):
    """Points for each side, and/or a catalog reward (issued as a coupon)."""

    referrer: int = 0
    referee: int = 0
    referrer_reward: str | None = None
    referee_reward: str | None = None


class ReferralLimit(Spec):
    max: AtLeastOne
    period: Literal["month", "year", "lifetime"] = "year"


class ReferralSpec(Spec):
    """Member-gets-member. Rewards are points, pending until the qualifying purchase
    vests; `on: referral` rules also run for the referrer when a referral qualifies."""

    qualify: ReferralQualify = msgspec.field(default_factory=ReferralQualify)
    rewards: ReferralRewards = msgspec.field(default_factory=ReferralRewards)
    limit: ReferralLimit | None = None


class RewardLimit(Spec):
    max: AtLeastOne
    period: Literal["day", "week", "month", "year", "lifetime"] = "lifetime"


class RewardSpec(Spec):
    """One catalog reward: what it is, what it costs in points, who may redeem it."""

    kind: Literal["discount", "percent_off", "free_product", "gift"]
    cost: int
    name: str | None = None
    cost_by_tier: dict[str, int] = msgspec.field(default_factory=dict)
    value: Decimal | None = None  # discount: money off
    percent: Decimal | None = None  # percent_off
    sku: str | None = None  # free_product
    tiers: list[str] = msgspec.field(default_factory=list)  # empty: every tier
    tags: list[str] = msgspec.field(default_factory=list)  # a member needs one of them
    # Any member condition rules use (tier, tags, attributes, days since joining,
    # birthday month...), judged at the moment of redemption.
    when: ConditionSpec | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    stock: Count | None = None
    limit: RewardLimit | None = None
    coupon_days: Days = 30

    def __post_init__(self) -> None:
        needs = {"discount": "value", "percent_off": "percent", "free_product": "sku"}
        field = needs.get(self.kind)
        if field is not None and getattr(self, field) is None:
            raise ValueError(f"a {self.kind} reward needs `{field}`")
        if self.cost < 0 or any(cost < 0 for cost in self.cost_by_tier.values()):
            raise ValueError("a reward cannot cost negative points")
        if self.percent is not None and not 0 < self.percent <= 100:
            raise ValueError("percent must be more than 0 and at most 100")


class PointsPaymentSpec(Spec):
    """Points as payment at the till: `points` points are worth `value` in currency."""

    points: AtLeastOne
    value: Decimal

    def __post_init__(self) -> None:
        if not (self.value.is_finite() and self.value > 0):
            raise ValueError("value must be an amount above 0")


class RefundSpec(Spec):
    """What a refund does when the points it claws back were already spent: `floor`
    keeps the balance at zero and records the shortfall; `negative_balance` lets the
    balance go below zero, and future earnings repay it first."""

    shortfall: Literal["floor", "negative_balance"] = "floor"


class BirthdaySpec(Spec):
    """Points on a member's birthday, sized by tier: `points_by_tier`, else the tier's
    `benefits.birthday_points`, else `points`. Granted at local midnight in the
    member's time zone on the day, at the start of the birthday month, or
    `days_before` the day. A member who joined after the grant's moment gets that
    year's gift next year, not late."""

    on: Literal["day", "month_start", "days_before"] = "day"
    days_before: int | None = None
    points: int = 0
    points_by_tier: dict[str, int] = msgspec.field(default_factory=dict)
    # 29 February birthdays in other years: 28 February, or 1 March.
    leap_day: Literal["feb28", "mar1"] = "feb28"
    expires_after_days: Days | None = None
    template: str = "birthday"
    reward: str | None = None  # a catalog reward, issued as a coupon

    def __post_init__(self) -> None:
        if self.on == "days_before" and (self.days_before is None or self.days_before < 1):
            raise ValueError("on: days_before needs `days_before` (1 or more)")
        if self.on != "days_before" and self.days_before is not None:
            raise ValueError(f"`days_before` only goes with on: days_before, not {self.on}")
        _no_negative_points(self.points, self.points_by_tier)


class AnniversarySpec(Spec):
    """Points on each anniversary of joining (local date in the member's time zone)."""

    points: int = 0
    points_by_tier: dict[str, int] = msgspec.field(default_factory=dict)
    expires_after_days: Days | None = None
    template: str = "anniversary"
    reward: str | None = None  # a catalog reward, issued as a coupon

    def __post_init__(self) -> None:
        _no_negative_points(self.points, self.points_by_tier)


class CampaignSpec(Spec):
    """A gift on a public holiday (from the `holidays` package) or a named custom date,
    once a year, to the members who are eligible on the day."""

    id: str
    holiday: HolidaySpec | None = None
    custom_date: str | None = None
    points: int = 0
    points_by_tier: dict[str, int] = msgspec.field(default_factory=dict)
    tiers: list[str] = msgspec.field(default_factory=list)  # empty: every tier
    tags: list[str] = msgspec.field(default_factory=list)  # a member needs one of them
    consent_required: bool = False  # only members who accepted marketing
    expires_after_days: Days | None = None
    template: str | None = None
    reward: str | None = None  # a catalog reward, issued as a coupon
    # Only members with an order in the last N days before the occasion (activity).
    active_within_days: Days | None = None

    def __post_init__(self) -> None:
        if (self.holiday is None) == (self.custom_date is None):
            raise ValueError(f"campaign '{self.id}' needs exactly one of: holiday, custom_date")
        _no_negative_points(self.points, self.points_by_tier)


class JobsSpec(Spec):
    """When each scheduler job runs: cron expressions in the programme's time zone.
    Grants run often so that each time zone's local midnight is met promptly."""

    grants: str = "*/15 * * * *"
    expiry: str = "5 * * * *"
    expiry_notices: str = "0 3 * * *"
    vesting: str = "*/15 * * * *"
    tier_review: str = "10 0 * * *"
    hold_timeouts: str = "* * * * *"

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if not croniter.is_valid(value):
                raise ValueError(
                    f"jobs.{name}: '{value}' is not a cron expression like '0 * * * *'"
                )


class ScheduledSpec(Spec):
    """Scheduled grants and the scheduler's timings."""

    look_back_days: int = 3  # after downtime, missed occasions this recent are still given
    expiry_notice_days: int | None = 14  # a points_expiring notice this many days ahead
    birthday: BirthdaySpec | None = None
    anniversary: AnniversarySpec | None = None
    holidays: list[CampaignSpec] = msgspec.field(default_factory=list)
    jobs: JobsSpec = msgspec.field(default_factory=JobsSpec)

    def __post_init__(self) -> None:
        if not 0 <= self.look_back_days <= 60:
            raise ValueError("look_back_days must be between 0 and 60")
        if self.expiry_notice_days is not None and self.expiry_notice_days < 1:
            raise ValueError("expiry_notice_days must be 1 or more")


def _no_negative_points(points: int, by_tier: dict[str, int]) -> None:
    if points < 0 or any(value < 0 for value in by_tier.values()):
        raise ValueError("points cannot be negative")


class ProgramSpec(Spec):
    program: str
    currency: str
    point_value: Decimal
    timezone: str
    name: str | None = None
    activates_at: datetime | None = None
    multiplier_stacking: Literal["additive", "compound"] = "additive"
    max_points_per_event: int | None = None
    stores: dict[str, StoreSpec] = msgspec.field(default_factory=dict)
    custom_dates: dict[str, OneOrMany] = msgspec.field(default_factory=dict)
    tiers: list[TierSpec] = msgspec.field(default_factory=list)
    rules: list[RuleSpec] = msgspec.field(default_factory=list)
    tests: list[TestSpec] = msgspec.field(default_factory=list)
    rewards: dict[str, RewardSpec] = msgspec.field(default_factory=dict)
    points_payment: PointsPaymentSpec | None = None
    referrals: ReferralSpec | None = None
    scheduled: ScheduledSpec = msgspec.field(default_factory=ScheduledSpec)
    tier_policy: TierPolicySpec = msgspec.field(default_factory=TierPolicySpec)
    expiry: ExpirySpec = msgspec.field(default_factory=ExpirySpec)
    vesting: Reserved = None
    refunds: RefundSpec = msgspec.field(default_factory=RefundSpec)


def as_list(value: OneOrMany | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
