"""The HTTP API: a thin Litestar shell over the domain services."""
