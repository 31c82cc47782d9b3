"""An ASGI app that builds the real one on its first call.

The Functions host imports `function_app` on every cold start, and most invocations are timers that never
touch HTTP: they should not pay for importing FastAPI and building every route and schema. The HTTP function
builds the app on its first request (or on the ASGI lifespan startup that precedes it).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LazyAsgiApp:
    def __init__(self, factory: Callable[[], AsgiApp]) -> None:
        self._factory = factory
        self._app: AsgiApp | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> AsgiApp:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
