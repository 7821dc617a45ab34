"""Bearer API keys on every /v1 route, and roles checked per route, denying by default.

A route states who may call it with `opt=allow(Role.POS, ...)`. A /v1 route that
states nothing is refused to everyone but admin, so a forgotten declaration fails
closed instead of open.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from loyalty.auth.keys import Principal, Role
from loyalty.bootstrap import Container
from loyalty.errors import Forbidden, Unauthenticated

_ROLES_OPT = "roles"


def allow(*roles: Role) -> dict[str, Any]:
    return {_ROLES_OPT: frozenset(roles)}


class ApiKeyAuthentication(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, secret = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated(
                "missing_api_key", "send an API key as `Authorization: Bearer <key>`"
            )
        container: Container = connection.app.state.container
        principal = await container.api_keys.authenticate(secret.strip())
        if principal is None:
            raise Unauthenticated("invalid_api_key", "the API key is unknown or revoked")
        return AuthenticationResult(user=principal, auth=principal.key_id)


async def require_role(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    # Async on purpose: Litestar runs a synchronous guard in a worker thread, a thread
    # hop on every /v1 request for a set lookup.
    principal: Principal = connection.user
    roles: frozenset[Role] = handler.opt.get(_ROLES_OPT, frozenset())
    if not principal.may(roles):
        allowed = ", ".join(sorted(roles | {Role.ADMIN}))
        raise Forbidden(
            "role_forbidden",
            f"role {principal.role.value!r} may not call this route (allowed: {allowed})",
        )
