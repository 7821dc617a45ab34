"""/v1/members: enrol, read, update, list and look up members."""

from __future__ import annotations

from litestar import Controller, get, patch, post, put

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
    async def create(self, data: NewMember, members: MemberService) -> Member:
        return await members.create(data)

    @get(opt=allow(Role.POS, Role.APP, Role.MARKETER))
    async def list(
        self,
        members: MemberService,
        email: str | None = None,
        phone: str | None = None,
        tag: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> MemberPage:
        """Members in enrolment order; filter by email, phone or tag. Page with `after`."""
        query = MemberQuery(email=email, phone=phone, tag=tag, after=after, limit=limit)
        return await members.list(query)

    @get("/{member_id:str}", opt=allow(Role.POS, Role.APP, Role.MARKETER))
    async def get(self, member_id: str, members: MemberService) -> Member:
        return await members.get(member_id)

    @patch("/{member_id:str}", opt=allow(Role.APP, Role.MARKETER))
    async def update(self, member_id: str, data: MemberChanges, members: MemberService) -> Member:
        return await members.update(member_id, data)

    @put("/{member_id:str}/status", opt=allow(Role.MARKETER))
    async def set_status(
        self, member_id: str, data: StatusChange, members: MemberService
    ) -> Member:
        """Suspend or reactivate a member. Suspended members cannot earn or redeem."""
        return await members.set_status(member_id, data.status)

    @post("/{member_id:str}/erase", status_code=200, opt=allow())
    async def erase(self, member_id: str, members: MemberService) -> Member:
        """Erase the member's personal data (admin). Points history stays, anonymous."""
        return await members.erase(member_id)
