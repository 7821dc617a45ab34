"""Properties of the pure ledger arithmetic in loyalty.ledger.posting."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import assume, example, given
from hypothesis import strategies as st

from loyalty.ledger.accounts import MEMBER_ACCOUNTS, Account
from loyalty.ledger.posting import LotView, Posting, allocate, clawback_share, expiry_for
from loyalty.rules.schema import ExpirySpec

NEVER = datetime.max.replace(tzinfo=UTC)
BASE = datetime(2020, 1, 1, tzinfo=UTC)

expiries = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=3000).map(lambda days: BASE + timedelta(days=days)),
)


@st.composite
def lot_lists(draw: st.DrawFn) -> list[LotView]:
    count = draw(st.integers(min_value=0, max_value=12))
    ids = draw(st.lists(st.integers(1, 10_000), min_size=count, max_size=count, unique=True))
    return [
        LotView(lot_id, draw(st.integers(min_value=0, max_value=500)), draw(expiries))
        for lot_id in ids
    ]


@given(lot_lists(), st.integers(min_value=0, max_value=4000))
def test_allocate_takes_what_lots_hold_soonest_expiring_first(
    lots: list[LotView], points: int
) -> None:
    taken, short = allocate(lots, points)
    by_id = {lot.id: lot for lot in lots}
    # Accounting: everything asked for is either taken or reported as a shortfall.
    assert sum(take for _, take in taken) + short == points
    assert short >= 0
    held = sum(lot.remaining for lot in lots)
    assert short == max(points - held, 0)
    # Never more than a lot has, never nothing, each lot at most once.
    assert len({lot_id for lot_id, _ in taken}) == len(taken)
    for lot_id, take in taken:
        assert 0 < take <= by_id[lot_id].remaining
    # Order: soonest expiry first, never-expiring last, then the oldest (lowest id).
    keys = [(by_id[i].expires_at or NEVER, i) for i, _ in taken]
    assert keys == sorted(keys)
    # Only the last lot touched may be partly used; every lot that sorts before the
    # last one taken (and has points) is emptied.
    if taken:
        last_key = keys[-1]
        for lot in lots:
            key = (lot.expires_at or NEVER, lot.id)
            if key < last_key and lot.remaining > 0:
                assert dict(taken).get(lot.id) == lot.remaining
    if short:
        assert dict(taken) == {lot.id: lot.remaining for lot in lots if lot.remaining > 0}


def test_allocate_spends_never_expiring_lots_last() -> None:
    lots = [
        LotView(1, 50, None),
        LotView(2, 50, BASE + timedelta(days=400)),
        LotView(3, 50, BASE + timedelta(days=10)),
    ]
    taken, short = allocate(lots, 120)
    assert taken == [(3, 50), (2, 50), (1, 20)]
    assert short == 0


@st.composite
def refund_schedules(draw: st.DrawFn) -> tuple[Decimal, list[Decimal]]:
    """An order total (in cents) and partial refunds (in cents) that add up to it."""
    total_cents = draw(st.integers(min_value=1, max_value=1_000_000))
    cuts = draw(st.lists(st.integers(1, total_cents), max_size=8, unique=True))
    bounds = sorted({0, total_cents, *cuts})
    parts = [b - a for a, b in itertools.pairwise(bounds)]
    return Decimal(total_cents) / 100, [Decimal(p) / 100 for p in parts]


@given(st.integers(min_value=0, max_value=10_000_000), refund_schedules())
@example(100, (Decimal("1.00"), [Decimal("0.33"), Decimal("0.33"), Decimal("0.34")]))
def test_partial_refunds_claw_back_exactly_what_was_earned(
    points: int, schedule: tuple[Decimal, list[Decimal]]
) -> None:
    total, parts = schedule
    assert sum(parts) == total
    already = refunded = Decimal(0)
    clawed = 0
    for part in parts:
        refunded += part
        share = clawback_share(points, clawed, refunded, total)
        assert share >= 0
        clawed += share
        assert clawed <= points
        # Never ahead of the proportional share, never more than one point behind it.
        exact = Decimal(points) * refunded / total
        assert clawed <= exact
        assert exact - clawed < 1
        already = refunded
    assert already == total
    assert clawed == points


@given(
    st.integers(min_value=0, max_value=10_000_000),
    st.integers(min_value=0, max_value=10_000_000),
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.decimals(min_value=0, max_value=10**6, places=2),
)
def test_clawback_share_is_bounded(
    points: int, already: int, refunded: Decimal, total: Decimal
) -> None:
    assume(already <= points)
    share = clawback_share(points, already, refunded, total)
    assert 0 <= share <= points - already


@given(st.integers(0, 1_000_000), st.decimals(min_value="0.01", max_value=10**6, places=2))
def test_refund_of_whole_order_at_once_claws_back_everything(points: int, total: Decimal) -> None:
    assert clawback_share(points, 0, total, total) == points
    assert clawback_share(points, 0, total + 1, total) == points


ZONES = [
    "UTC",
    "Asia/Shanghai",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "America/Havana",
    "Europe/London",
    "Pacific/Apia",
]
policies = st.one_of(
    st.just(ExpirySpec(policy="never")),
    st.integers(min_value=1, max_value=120).map(
        lambda months: ExpirySpec(policy="rolling_months", months=months)
    ),
    st.just(ExpirySpec(policy="end_of_quarter")),
    st.just(ExpirySpec(policy="end_of_year")),
)


def _is_start_of_local_day(at: datetime, zone: ZoneInfo) -> bool:
    """`at` is the first instant of its local day (midnight, or the end of a DST gap
    when midnight itself does not exist that day)."""
    local = at.astimezone(zone)
    before = (at - timedelta(microseconds=1)).astimezone(zone)
    return before.date() < local.date()


@given(
    policies,
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2090, 12, 31),
        timezones=st.just(UTC),
    ),
    st.sampled_from(ZONES),
)
@example(
    ExpirySpec(policy="rolling_months", months=1), datetime(2026, 1, 31, 12, tzinfo=UTC), "UTC"
)
@example(
    ExpirySpec(policy="end_of_quarter"), datetime(2026, 12, 31, 15, 59, tzinfo=UTC), "Asia/Shanghai"
)
@example(
    ExpirySpec(policy="end_of_year"), datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "Asia/Shanghai"
)
def test_expiry_is_after_earning_at_local_midnight(
    policy: ExpirySpec, earned_at: datetime, zone_name: str
) -> None:
    zone = ZoneInfo(zone_name)
    expires = expiry_for(policy, earned_at, zone)
    if policy.policy == "never":
        assert expires is None
        return
    assert expires is not None
    assert expires.utcoffset() == timedelta(0)
    assert expires > earned_at
    assert _is_start_of_local_day(expires, zone)
    earned_local = earned_at.astimezone(zone).date()
    local = expires.astimezone(zone).date()
    if policy.policy == "rolling_months":
        assert policy.months is not None
        months = (local.year - earned_local.year) * 12 + local.month - earned_local.month
        assert months == policy.months
        # The same day of the month, or the last day of a shorter month.
        assert local.day == earned_local.day or (
            local.day < earned_local.day and (local + timedelta(days=1)).day == 1
        )
    elif policy.policy == "end_of_quarter":
        assert local.day == 1
        assert local.month in (1, 4, 7, 10)
        assert timedelta(0) < local - earned_local <= timedelta(days=92)
    else:
        assert (local.month, local.day, local.year) == (1, 1, earned_local.year + 1)


def test_expiry_examples() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    earned = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
    rolling = expiry_for(ExpirySpec(policy="rolling_months", months=12), earned, shanghai)
    assert rolling == datetime(2027, 6, 14, 16, 0, tzinfo=UTC)
    quarter = expiry_for(ExpirySpec(policy="end_of_quarter"), earned, shanghai)
    assert quarter == datetime(2026, 6, 30, 16, 0, tzinfo=UTC)
    year = expiry_for(ExpirySpec(policy="end_of_year"), earned, shanghai)
    assert year == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)


member_accounts = st.sampled_from(sorted(MEMBER_ACCOUNTS))
house_accounts = st.sampled_from(sorted(set(Account) - MEMBER_ACCOUNTS))
ends = st.one_of(
    st.tuples(member_accounts, st.integers(1, 5)),
    st.tuples(house_accounts, st.none()),
)


@given(st.lists(st.tuples(st.integers(-(10**9), 10**9), ends, ends), max_size=20))
def test_posting_entries_always_sum_to_zero(
    moves: list[tuple[int, tuple[Account, int | None], tuple[Account, int | None]]],
) -> None:
    posting = Posting(at=BASE)
    for points, source, target in moves:
        posting.move(points, source, target, reason="test")
    assert sum(entry["amount"] for entry in posting.entries) == 0
    assert len(posting.entries) == 2 * sum(points != 0 for points, _, _ in moves)
    for entry in posting.entries:
        member_account = Account(entry["account"]) in MEMBER_ACCOUNTS
        assert (entry["member_id"] is not None) == member_account
        assert entry["at"] == BASE
    # The member deltas are the member entries, summed per member and account.
    sums: dict[tuple[int, Account], int] = {}
    for entry in posting.entries:
        if entry["member_id"] is not None:
            key = (entry["member_id"], Account(entry["account"]))
            sums[key] = sums.get(key, 0) + entry["amount"]
    for (member, account), amount in sums.items():
        assert posting.delta(member, account) == amount
    house = sum(e["amount"] for e in posting.entries if e["member_id"] is None)
    assert house == -sum(sums.values())
