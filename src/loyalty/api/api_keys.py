"""/v1/api-keys: key management for admins (the CLI does the same)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from loyalty.api.params import RowId
from loyalty.api.security import allow
from loyalty.auth.keys import ApiKey, IssuedKey, Role
from loyalty.auth.service import ApiKeyService


class NewApiKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    role: Role


class ApiKeyController(Controller):
    path = "/api-keys"
    tags = ["api keys"]
    opt = allow()

    @post()
    async def create(
        self, data: JSONBody[NewApiKey], api_keys: NamedDependency[ApiKeyService]
    ) -> IssuedKey:
        """Create a key. The secret is in this response only; it is stored hashed."""
        return await api_keys.create(data.name, data.role)

    @get()
    async def list(self, api_keys: NamedDependency[ApiKeyService]) -> list[ApiKey]:
        return await api_keys.list()

    @post("/{key_id:int}/revoke", status_code=200)
    async def revoke(self, key_id: RowId, api_keys: NamedDependency[ApiKeyService]) -> ApiKey:
        return await api_keys.revoke(key_id)
