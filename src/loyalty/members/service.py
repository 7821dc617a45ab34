"""Member use cases: enrol, read, change, list, suspend and erase."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Select, insert, select, update
from sqlalchemy.engine import RowMapping

from loyalty.clock import Clock
from loyalty.db.engine import Database, dialect_insert, json_array_contains
from loyalty.db.paging import check_limit, decode_cursor, encode_cursor
from loyalty.db.schema import balances, members
from loyalty.errors import Conflict, FieldError, InvalidInput, NotFound
from loyalty.ledger.book import new_balance_row
from loyalty.members.model import (
    Member,
    MemberChanges,
    MemberPage,
    MemberQuery,
    MemberStatus,
    NewMember,
)
from loyalty.members.validation import (
    FieldErrors,
    check_birthday,
    check_timezone,
    new_referral_code,
    normalise_email,
    normalise_phone,
    normalise_tags,
)
from loyalty.referrals.service import record_referral, referrer_for

_PERSONAL_FIELDS = ("name", "email", "phone", "birthday")


class MemberService:
    def __init__(self, db: Database, clock: Clock, phone_region: str | None = None) -> None:
        self._db = db
        self._clock = clock
        self._phone_region = phone_region

    async def create(self, new: NewMember) -> Member:
        now = self._clock.now()
        values = self._checked(msgspec.structs.asdict(new))
        values.pop("joined_at")
        code = values.pop("referred_by")
        values |= {
            "status": MemberStatus.ACTIVE.value,
            "referral_code": new_referral_code(),
            "joined_at": new.joined_at or now,
            "created_at": now,
            "updated_at": now,
        }
        statement = (
            dialect_insert(self._db, members)
            .values(values)
            .on_conflict_do_nothing(index_elements=["member_id"])
            .returning(members)
        )
        async with self._db.write() as conn:
            referrer = await referrer_for(conn, code) if code else None
            if referrer is not None:
                statement = statement.values(referred_by=referrer.id)
            row = (await conn.execute(statement)).one_or_none()
            if row is not None:
                await conn.execute(insert(balances).values(new_balance_row(row.id, now)))
                if referrer is not None:
                    await record_referral(conn, referrer, row.id, row.email, row.phone, now)
        if row is None:
            message = f"a member with member_id {new.member_id!r} already exists"
            field = FieldError("member_id", "duplicate", message)
            raise Conflict("member_exists", message, errors=[field])
        return _to_member(row._mapping)

    async def get(self, member_id: str) -> Member:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(members).where(members.c.member_id == member_id))
            ).one_or_none()
        if row is None:
            raise _not_found(member_id)
        return _to_member(row._mapping)

    async def update(self, member_id: str, changes: MemberChanges) -> Member:
        given = {
            name: value
            for name, value in msgspec.structs.asdict(changes).items()
            if value is not msgspec.UNSET
        }
        values = self._checked(given)
        return await self._update_live(member_id, values)

    async def set_status(self, member_id: str, status: str) -> Member:
        """Suspend or reactivate a member (erasure has its own, admin-only, route)."""
        return await self._update_live(member_id, {"status": status})

    async def erase(self, member_id: str) -> Member:
        """Forget the person, keep the member: the ledger stays whole and balanced."""
        now = self._clock.now()
        values: dict[str, Any] = dict.fromkeys(_PERSONAL_FIELDS)
        values |= {
            "attributes": {},
            "tags": [],
            "locale": None,
            "quiet_hours": None,
            "marketing_consent": False,
            "status": MemberStatus.ERASED.value,
            "erased_at": now,
        }
        return await self._update_live(member_id, values)

    async def list(self, query: MemberQuery) -> MemberPage:
        check_limit(query.limit)
        after = decode_cursor(query.after)
        statement = self._filtered(select(members), query)
        statement = (
            statement.where(members.c.id > after).order_by(members.c.id).limit(query.limit + 1)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(statement)).all()
        page = rows[: query.limit]
        more = len(rows) > query.limit
        cursor = encode_cursor(page[-1].id) if more and page else None
        return MemberPage([_to_member(row._mapping) for row in page], cursor)

    def _filtered(self, statement: Select[Any], query: MemberQuery) -> Select[Any]:
        errors = FieldErrors()
        if query.email is not None:
            email = normalise_email(query.email, errors)
            statement = statement.where(members.c.email == email)
        if query.phone is not None:
            phone = normalise_phone(query.phone, self._phone_region, errors)
            statement = statement.where(members.c.phone == phone)
        if errors.errors:
            raise InvalidInput.from_fields(errors.errors)
        if query.tag is not None:
            statement = statement.where(json_array_contains(self._db, members.c.tags, query.tag))
        return statement

    async def _update_live(self, member_id: str, values: dict[str, Any]) -> Member:
        values["updated_at"] = self._clock.now()
        statement = (
            update(members)
            .where(
                members.c.member_id == member_id,
                members.c.status != MemberStatus.ERASED.value,
            )
            .values(values)
            .returning(members)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(statement)).one_or_none()
            if row is None:
                exists = await conn.scalar(
                    select(members.c.id).where(members.c.member_id == member_id)
                )
                if exists is None:
                    raise _not_found(member_id)
                raise Conflict("member_erased", f"member {member_id!r} has been erased")
        return _to_member(row._mapping)

    def _checked(self, values: dict[str, Any]) -> dict[str, Any]:
        """Normalise the given fields; raise with every bad one named."""
        errors = FieldErrors()
        if values.get("email") is not None:
            values["email"] = normalise_email(values["email"], errors)
        if values.get("phone") is not None:
            values["phone"] = normalise_phone(values["phone"], self._phone_region, errors)
        if "timezone" in values:
            check_timezone(values["timezone"], errors)
        if values.get("birthday") is not None:
            check_birthday(values["birthday"], self._clock.now().date(), errors)
        if "tags" in values:
            values["tags"] = normalise_tags(values["tags"])
        if values.get("name") is not None:
            values["name"] = values["name"].strip()
            if not values["name"]:
                errors.add("name", "blank", "name must not be blank")
        if errors.errors:
            raise InvalidInput.from_fields(errors.errors)
        return values


def _not_found(member_id: str) -> NotFound:
    return NotFound("member_not_found", f"no member with member_id {member_id!r}")


def _to_member(row: RowMapping) -> Member:
    fields = {name: row[name] for name in Member.__struct_fields__}
    return msgspec.convert(fields, Member, from_attributes=False, strict=False)
