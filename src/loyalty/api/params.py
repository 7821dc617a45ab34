"""Path parameters shared by controllers."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

# Row ids are PostgreSQL bigints: anything outside would fail in the driver (a 500).
RowId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]
