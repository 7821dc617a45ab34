"""`loyalty demo`: seed a database with a few weeks of believable Tea House activity.

Everything goes through the services, as a till or the app would send it, with a
controlled clock walking through the days: members enrol, sign up, buy tea, return
some of it, check in, write reviews; the vesting and expiry jobs run as days pass.
The random choices come from one seeded generator, so the same seed and end time
give the same data. Member data is fake (Faker, example.* e-mail domains).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
from faker import Faker
from sqlalchemy import func, select

from loyalty.auth.keys import Principal
from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.db.schema import balances, members
from loyalty.errors import InvalidInput, NotFound
from loyalty.ledger.model import AdjustmentIn, EventIn, ItemIn
from loyalty.members.model import NewMember
from loyalty.rules import read_program_files

PROGRAM_FILE = "tea-house.yaml"
MEMBER_PREFIX = "DEMO-"
CURRENCY = "CNY"
SHOP_ZONE = ZoneInfo("Asia/Shanghai")
STORES = ("sh-jingan", "hz-westlake", "xj-urumqi")


@dataclass(frozen=True)
class Locale:
    faker: str
    tag: str
    timezone: str
    weight: int
    # Builds a candidate mobile number from random digits; checked before use.
    phone: Callable[[random.Random], str]


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _cn(r: random.Random) -> str:
    return f"+861{r.choice('3589')}{_digits(r, 9)}"


def _tw(r: random.Random) -> str:
    return f"+8869{_digits(r, 8)}"


def _jp(r: random.Random) -> str:
    return f"+81{r.choice(['70', '80', '90'])}{_digits(r, 8)}"


def _gb(r: random.Random) -> str:
    return f"+447{r.choice('4579')}{_digits(r, 8)}"


def _us(r: random.Random) -> str:
    # 555-01xx is the fictional range: no real subscriber gets a demo number.
    return f"+1{r.choice(['213', '415', '650'])}55501{_digits(r, 2)}"


def _fr(r: random.Random) -> str:
    return f"+336{_digits(r, 8)}"


LOCALES = (
    Locale("zh_CN", "zh-CN", "Asia/Shanghai", 50, _cn),
    Locale("zh_TW", "zh-TW", "Asia/Taipei", 6, _tw),
    Locale("ja_JP", "ja-JP", "Asia/Tokyo", 12, _jp),
    Locale("en_GB", "en-GB", "Europe/London", 12, _gb),
    Locale("en_US", "en-US", "America/Los_Angeles", 12, _us),
    Locale("fr_FR", "fr-FR", "Europe/Paris", 8, _fr),
)


@dataclass(frozen=True)
class Product:
    sku: str
    category: str
    price: Decimal
    weight: int
    max_quantity: int = 2


CATALOGUE = (
    Product("OOLONG-L", "tea-drinks", Decimal("18.00"), 30, 4),
    Product("MILK-TEA-L", "tea-drinks", Decimal("22.00"), 30, 4),
    Product("MATCHA-L", "tea-drinks", Decimal("26.00"), 20, 3),
    Product("JASMINE-50", "tea-leaves", Decimal("58.00"), 10),
    Product("TGY-100", "tea-leaves", Decimal("88.00"), 8),
    Product("LJ-250", "tea-leaves", Decimal("168.00"), 6),
    Product("PUER-357", "tea-leaves", Decimal("298.00"), 3),
    Product("CUP-01", "teaware", Decimal("40.00"), 6, 4),
    Product("GAIWAN", "teaware", Decimal("128.00"), 3),
    Product("POT-ZISHA", "teaware", Decimal("680.00"), 1, 1),
    Product("MC-6", "mooncake", Decimal("98.00"), 4, 3),
    Product("MC-LAVA", "mooncake", Decimal("138.00"), 2, 3),
)
TAGS = ("tea-club", "office-worker", "student", "wholesale", "gift-buyer")
CUSTOM_EVENTS = (("app_checkin", 0.35), ("review", 0.04), ("survey", 0.01), ("social_share", 0.03))


@dataclass
class DemoResult:
    start: datetime
    end: datetime
    program_version: int
    published: bool
    member_ids: list[str]
    events: int = 0
    refunds: int = 0
    adjustments: int = 0
    vested: int = 0
    expired: int = 0
    admin_key: str = ""
    top_members: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class _Member:
    member_id: str
    locale: Locale
    visits_per_week: float
    app_user: bool
    joins_on: int | None  # day of the replay when they sign up; None: already a member
    orders: int = 0


def find_example_program() -> Path | None:
    """examples/tea-house.yaml of a source checkout (relative to this package or the
    working directory); an installed wheel carries no examples."""
    here = Path(__file__).resolve()
    for base in (here.parents[2], Path.cwd()):
        candidate = base / "examples" / PROGRAM_FILE
        if candidate.is_file():
            return candidate
    return None


async def run_demo(
    container: Container, *, members_count: int = 200, days: int = 28, seed: int = 7
) -> DemoResult:
    """Replay `days` days of activity ending at the container's clock, which must be a
    FixedClock (the demo moves it). Safe to run again: it adds new members."""
    clock = container.clock
    if not isinstance(clock, FixedClock):
        raise TypeError("run_demo needs a Container built with a FixedClock")
    if members_count < 1 or days < 1:
        raise InvalidInput("validation_failed", "members and days must be at least 1")
    end = clock.now()
    # Days run from the shops' midnight, so that a day's trading is one day of the loop.
    first = (end - timedelta(days=days)).astimezone(SHOP_ZONE).date()
    start = datetime.combine(first, time(0), SHOP_ZONE).astimezone(UTC)
    version, published = await _ensure_program(container, clock, start)
    clock.set(start)
    offset = await _existing_demo_members(container)
    # Seeded by the run too: a second run adds different people, still reproducibly.
    # Fake data wants reproducibility, not secrecy.
    rng = random.Random(f"{seed}:{offset}")  # noqa: S311
    result = DemoResult(
        start=start, end=end, program_version=version, published=published, member_ids=[]
    )
    admin = await container.api_keys.create("demo", "admin")
    result.admin_key = admin.secret
    marketer = Principal(admin.key.id, admin.key.name, admin.key.role)
    run = _Run(container, clock, rng, result, end, marketer)
    await run.setup(offset, members_count, days)
    for day in range(days + 1):
        await run.day(day)
    await run.jobs(end)
    result.top_members = await _top_members(container, result.member_ids)
    return result


async def _ensure_program(
    container: Container, clock: FixedClock, start: datetime
) -> tuple[int, bool]:
    """The active programme, or the example one published as of the replay's start."""
    try:
        version, _ = await container.programs.active(clock.now())
        return version.version, False
    except NotFound:
        pass
    path = find_example_program()
    if path is None:
        raise NotFound(
            "demo_program_not_found",
            f"no programme is active and examples/{PROGRAM_FILE} was not found (it ships with "
            "the source, not the wheel): publish one with `loyalty program publish FILE` "
            "or run the demo from a source checkout",
        )
    files, main_file = read_program_files(path)
    now = clock.now()
    clock.set(start)
    try:
        published, _ = await container.programs.publish(
            files, main_file, actor="demo", note="loyalty demo"
        )
    finally:
        clock.set(now)
    return published.version, True


async def _existing_demo_members(container: Container) -> int:
    async with container.db.read() as conn:
        count = await conn.scalar(
            select(func.count()).where(members.c.member_id.like(f"{MEMBER_PREFIX}%"))
        )
    return int(count or 0)


async def _top_members(container: Container, ids: list[str]) -> list[tuple[str, int]]:
    async with container.db.read() as conn:
        rows = await conn.execute(
            select(members.c.member_id, balances.c.available)
            .join(balances, balances.c.member_id == members.c.id)
            .where(members.c.member_id.in_(ids))
            .order_by(balances.c.available.desc(), members.c.member_id)
            .limit(3)
        )
        return [(member_id, int(points)) for member_id, points in rows]


Action = Callable[[], Awaitable[object]]


class _Run:
    def __init__(
        self,
        container: Container,
        clock: FixedClock,
        rng: random.Random,
        result: DemoResult,
        end: datetime,
        marketer: Principal,
    ) -> None:
        self.c = container
        self.clock = clock
        self.rng = rng
        self.result = result
        self.end = end
        self.marketer = marketer
        self.people: list[_Member] = []
        self.fakers: dict[str, Faker] = {}
        # Refunds due, by replay day: when, order, member, total, lines returned.
        self.refunds: dict[int, list[tuple[datetime, str, str, Decimal, list[ItemIn]]]] = {}
        self.keys = 0

    async def setup(self, offset: int, count: int, days: int) -> None:
        till = await self.c.api_keys.create("demo till", "pos")
        app = await self.c.api_keys.create("demo app", "app")
        self.till = Principal(till.key.id, till.key.name, till.key.role)
        self.app = Principal(app.key.id, app.key.name, app.key.role)
        for index, locale in enumerate(LOCALES):
            fake = Faker(locale.faker)
            fake.seed_instance(self.rng.randrange(2**32) + index)
            self.fakers[locale.faker] = fake
        weights = [locale.weight for locale in LOCALES]
        for number in range(offset + 1, offset + count + 1):
            locale = self.rng.choices(LOCALES, weights)[0]
            # Most are members already; a third sign up during the replay.
            joins_on = self.rng.randrange(days) if self.rng.random() < 0.3 else None
            person = _Member(
                member_id=f"{MEMBER_PREFIX}{number:06d}",
                locale=locale,
                visits_per_week=self.rng.choices([0.3, 1.0, 2.0, 4.0], [30, 40, 20, 10])[0],
                app_user=self.rng.random() < 0.5,
                joins_on=joins_on,
            )
            self.people.append(person)
            self.result.member_ids.append(person.member_id)
            if joins_on is None:
                await self._enrol(person, joined=self.clock.now() - self._days(1, 1500))

    def _days(self, low: int, high: int) -> timedelta:
        return timedelta(days=self.rng.randint(low, high), seconds=self.rng.randrange(86400))

    async def _enrol(self, person: _Member, joined: datetime | None) -> None:
        fake, rng = self.fakers[person.locale.faker], self.rng
        birthday = date(rng.randint(1955, 2006), rng.randint(1, 12), rng.randint(1, 28))
        await self.c.members.create(
            NewMember(
                member_id=person.member_id,
                name=fake.name(),
                email=fake.safe_email() if rng.random() < 0.85 else None,
                phone=self._phone(person.locale) if rng.random() < 0.9 else None,
                birthday=birthday if rng.random() < 0.8 else None,
                timezone=person.locale.timezone,
                locale=person.locale.tag,
                marketing_consent=rng.random() < 0.6,
                attributes={"favourite": rng.choice(CATALOGUE).category, "demo": True},
                tags=rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2]))
                + (["staff"] if rng.random() < 0.02 else []),
                joined_at=joined,
            )
        )

    def _phone(self, locale: Locale) -> str | None:
        for _ in range(20):
            candidate = locale.phone(self.rng)
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                return candidate
        return None

    async def jobs(self, at: datetime) -> None:
        self.clock.set(at)
        self.result.vested += await self.c.ledger_jobs.vest_due(at)
        self.result.expired += await self.c.ledger_jobs.expire_due(at)

    async def day(self, day: int) -> None:
        midnight = self.result.start + timedelta(days=day)
        if midnight > self.end:
            return
        await self.jobs(midnight)
        local_day = midnight.astimezone(SHOP_ZONE).date()
        planned: list[tuple[datetime, int, Action]] = []

        def plan(at: datetime, action: Action) -> None:
            # Nothing after the end of the replay: the events would be in the future.
            if midnight <= at <= self.end:
                planned.append((at, len(planned), action))

        for person in self.people:
            if person.joins_on is not None and person.joins_on >= day:
                # Not a member yet; on the day they join, they only sign up.
                if person.joins_on == day:
                    plan(self._shop_time(local_day, 9, 21), self._signup(person))
                continue
            if self.rng.random() < person.visits_per_week / 7:
                plan(self._shop_time(local_day, 7, 22), self._purchase(person))
            if person.app_user:
                for name, chance in CUSTOM_EVENTS:
                    if self.rng.random() < chance:
                        plan(self._shop_time(local_day, 7, 23), self._custom(person, name))
            if self.rng.random() < 0.003:
                plan(self._shop_time(local_day, 10, 18), self._adjust(person))
        for at, order_id, member_id, total, items in self.refunds.pop(day, []):
            plan(at, self._refund(member_id, order_id, total, items))
        for at, _, action in sorted(planned, key=lambda entry: (entry[0], entry[1])):
            # The till sends a moment after the sale.
            self.clock.set(min(at + timedelta(seconds=self.rng.randint(1, 90)), self.end))
            await action()

    def _shop_time(self, day: date, opens: int, closes: int) -> datetime:
        local = datetime.combine(day, time(opens), SHOP_ZONE)
        local += timedelta(seconds=self.rng.randrange((closes - opens) * 3600))
        return local.astimezone(UTC)

    async def _record(self, source: Principal, event: EventIn) -> None:
        self.keys += 1
        await self.c.events.record(source, f"demo-{self.keys}", event)
        self.result.events += 1

    def _signup(self, person: _Member) -> Action:
        async def action() -> None:
            await self._enrol(person, joined=None)
            at = self.clock.now()
            await self._record(
                self.app, EventIn(type="signup", member_id=person.member_id, occurred_at=at)
            )
            # Some were brought by a friend, who is thanked once their friend joins.
            friends = [p for p in self.people if p.joins_on is None]
            if friends and self.rng.random() < 0.3:
                friend = self.rng.choice(friends)
                await self._record(
                    self.app,
                    EventIn(
                        type="referral",
                        member_id=friend.member_id,
                        occurred_at=at,
                        attributes={"referred": person.member_id},
                    ),
                )

        return action

    def _purchase(self, person: _Member) -> Action:
        rng = self.rng
        lines = rng.choices(range(1, 9), [30, 25, 15, 10, 8, 5, 4, 3])[0]
        chosen = rng.choices(CATALOGUE, [p.weight for p in CATALOGUE], k=lines)
        merged: dict[str, ItemIn] = {}
        for product in chosen:
            quantity = rng.randint(1, product.max_quantity)
            if product.sku in merged:
                quantity += merged[product.sku].quantity
            merged[product.sku] = ItemIn(
                sku=product.sku,
                quantity=quantity,
                unit_price=product.price,
                category=product.category,
            )
        items = list(merged.values())
        total = sum((item.unit_price * item.quantity for item in items), Decimal(0))
        in_app = person.app_user and rng.random() < 0.4
        person.orders += 1
        order_id = f"{person.member_id}-{person.orders:04d}"

        async def action() -> None:
            at = self.clock.now()
            await self._record(
                self.app if in_app else self.till,
                EventIn(
                    type="purchase",
                    member_id=person.member_id,
                    occurred_at=at,
                    order_id=order_id,
                    store_id=None if in_app else rng.choice(STORES),
                    channel="app" if in_app else "store",
                    currency=CURRENCY,
                    payment_method=rng.choice(["alipay", "wechat-pay", "card", "cash"]),
                    total=total,
                    items=items,
                ),
            )
            # About one order in twenty-five comes back within a week, whole or a line.
            if rng.random() < 0.04:
                later = at + self._days(1, 6)
                day = (later - self.result.start).days
                returned = [] if rng.random() < 0.5 else [rng.choice(items)]
                lines = [ItemIn(sku=item.sku, quantity=item.quantity) for item in returned]
                self.refunds.setdefault(day, []).append(
                    (later, order_id, person.member_id, total, lines)
                )

        return action

    def _refund(self, member_id: str, order_id: str, total: Decimal, items: list[ItemIn]) -> Action:
        async def action() -> None:
            await self._record(
                self.till,
                EventIn(
                    type="refund",
                    member_id=member_id,
                    occurred_at=self.clock.now(),
                    order_id=order_id,
                    items=items,
                    # No lines named: the whole order comes back.
                    total=None if items else total,
                ),
            )
            self.result.refunds += 1

        return action

    def _custom(self, person: _Member, name: str) -> Action:
        async def action() -> None:
            await self._record(
                self.app,
                EventIn(
                    type="custom",
                    member_id=person.member_id,
                    occurred_at=self.clock.now(),
                    name=name,
                ),
            )

        return action

    def _adjust(self, person: _Member) -> Action:
        rng = self.rng
        credit = rng.random() < 0.7
        points = rng.choice([50, 100, 200]) if credit else -rng.choice([50, 100])
        reason = rng.choice(["goodwill", "service-recovery"]) if credit else "manual-redemption"

        async def action() -> None:
            try:
                await self.c.ledger.adjust(
                    person.member_id, AdjustmentIn(points=points, reason=reason), self.marketer
                )
            except (InvalidInput, NotFound):
                # A debit larger than the balance, or no programme in force yet at this
                # moment (one published later than the replay starts): skip it.
                return
            self.result.adjustments += 1

        return action


def summary(result: DemoResult, base_url: str) -> list[str]:
    """What `loyalty demo` prints: what was made, and commands to look at it."""
    lines = [
        f"replayed {result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC with "
        f"programme version {result.program_version}"
        + (" (published examples/tea-house.yaml)" if result.published else ""),
        f"{len(result.member_ids)} members, {result.events} events ({result.refunds} refunds), "
        f"{result.adjustments} adjustments; "
        f"vested {result.vested}, expired {result.expired} points",
        "members with the most points: "
        + ", ".join(f"{member} ({points})" for member, points in result.top_members),
        "",
        "admin API key for the demo (shown once, store it now):",
        f"  export LOYALTY_KEY={result.admin_key}",
        "",
        "try it (after `loyalty serve`):",
    ]
    member = result.top_members[0][0] if result.top_members else result.member_ids[0]
    auth = '-H "Authorization: Bearer $LOYALTY_KEY"'
    for path in (
        f"/v1/members/{member}/balance",
        f"/v1/members/{member}/ledger?limit=5",
        "/v1/reports/liability",
    ):
        lines.append(f"  curl -s {auth} '{base_url}{path}'")
    return lines
