"""Nothing on a request's path runs in Litestar's worker threads.

Litestar offloads a synchronous guard, handler or dependency with `sync_to_thread`:
a thread hop per request (the profile of the purchase path found one: the role guard).
"""

from __future__ import annotations

from litestar.routes import HTTPRoute
from litestar.utils.sync import AsyncCallable

from loyalty.api.app import create_app
from loyalty.bootstrap import Container
from loyalty.settings import Settings


def test_no_guard_handler_or_dependency_runs_in_a_thread() -> None:
    app = create_app(Container(Settings.from_mapping({"database_url": "sqlite+aiosqlite://"})))
    offloaded = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler, _ in route.route_handler_map.values():
            name = f"{route.path} {handler.handler_name}"
            if handler.has_sync_callable and handler.sync_to_thread:
                offloaded.append(f"{name}: handler")
            offloaded += [
                f"{name}: guard {guard.func.__name__}"
                for guard in handler.resolve_guards()
                if isinstance(guard, AsyncCallable)
            ]
            offloaded += [
                f"{name}: dependency {key}"
                for key, provider in handler.resolve_dependencies().items()
                if provider.has_sync_callable and provider.sync_to_thread
            ]
    assert offloaded == []
