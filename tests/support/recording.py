"""An ASGI wrapper counting the requests an app was sent by how they ended, for the
fault tests: put in front of the API it counts what the API answered, in front of the
fault injector what the client saw."""

from __future__ import annotations

from typing import Any


def route(path: str) -> str:
    """A path with its uuids as `{id}`: /roles/{id}/assignments."""
    return "/".join("{id}" if len(part) == 36 else part for part in path.split("/"))


class Recorder:
    """Requests by (method, route, how they ended): the status sent, or `dropped` when
    the connection was cut (the fault injector raises)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.outcomes: dict[tuple[str, str, str], int] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = ["none"]

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            status[0] = "dropped"
            raise
        finally:
            at = (scope["method"], route(scope["path"]), status[0])
            self.outcomes[at] = self.outcomes.get(at, 0) + 1

    def count(self, method: str, path: str | None = None, status: str | None = None) -> int:
        """Requests of `method` (to `path`, a route; ending in `status`), None for any."""
        return sum(
            n
            for (m, p, s), n in self.outcomes.items()
            if m == method and path in (None, p) and status in (None, s)
        )
