"""/v1/members: enrol, read, update, list and look up members."""

from __future__ import annotations

from litestar import Controller, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.security import allow
from loyalty.auth.keys import Role
from loyalty.members.model import (
    Member,
    MemberChanges,
    MemberPage,
    MemberQuery,
    NewMember,
    StatusChange,
)
from loyalty.members.service import MemberService


class MemberController(Controller):
    path = "/members"
    tags = ["members"]

    @post(opt=allow(Role.POS, Role.APP, Role.MARKETER))
    async def create(
        self, data: JSONBody[NewMember], members: NamedDependency[MemberService]
    ) -> Member:
        return await members.create(data)

    @get(opt=allow(Role.POS, Role.APP, Role.MARKETER))
    async def list(
        self,
        members: NamedDependency[MemberService],
        email: FromQuery[str | None] = None,
        phone: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
        limit: FromQuery[int] = 50,
    ) -> MemberPage:
        """Members in enrolment order; filter by email, phone or tag. Page with `after`."""
        query = MemberQuery(email=email, phone=phone, tag=tag, after=after, limit=limit)
        return await members.list(query)

    @get("/{member_id:str}", opt=allow(Role.POS, Role.APP, Role.MARKETER))
    async def get(
        self, member_id: FromPath[str], members: NamedDependency[MemberService]
    ) -> Member:
        return await members.get(member_id)

    @patch("/{member_id:str}", opt=allow(Role.APP, Role.MARKETER))
    async def update(
        self,
        member_id: FromPath[str],
        data: JSONBody[MemberChanges],
        members: NamedDependency[MemberService],
    ) -> Member:
        return await members.update(member_id, data)

    @put("/{member_id:str}/status", opt=allow(Role.MARKETER))
    async def set_status(
        self,
        member_id: FromPath[str],
        data: JSONBody[StatusChange],
        members: NamedDependency[MemberService],
    ) -> Member:
        """Suspend or reactivate a member. Suspended members cannot earn or redeem."""
        return await members.set_status(member_id, data.status)

    @post("/{member_id:str}/erase", status_code=200, opt=allow())
    async def erase(
        self, member_id: FromPath[str], members: NamedDependency[MemberService]
    ) -> Member:
        """Erase the member's personal data (admin). Points history stays, anonymous."""
        return await members.erase(member_id)
