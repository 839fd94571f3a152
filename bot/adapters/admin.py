"""The operators' HTTP endpoints (``/admin/...``, with TASKBOT_ADMIN_TOKEN): deliveries that
were given up on, to list, retry or drop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.adapters.bodies import bearer, same_secret
from bot.core.runtime import Runtime

PREFIX = "/admin"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdminSettingsError(ValueError):
    """The admin token is too short; the message names the setting."""


def admin_token(raw: str | None) -> str | None:
    """TASKBOT_ADMIN_TOKEN, checked: without it the admin endpoints are not served."""
    if not raw:
        return None
    if len(raw) < 16:
        raise AdminSettingsError("TASKBOT_ADMIN_TOKEN must be at least 16 characters")
    return raw


class AdminEndpoints:
    """``GET /admin/deliveries``, ``POST /admin/deliveries/{source}/{id}/retry`` and
    ``DELETE /admin/deliveries/{source}/{id}``, for the bearer of the admin token."""

    def __init__(self, bot: Runtime, token: str) -> None:
        self.bot = bot
        self.token = token

    def install(self, app: web.Application) -> None:
        one = f"{PREFIX}/deliveries/{{source}}/{{delivery_id}}"
        app.router.add_get(f"{PREFIX}/deliveries", self._guarded(self.parked))
        app.router.add_post(f"{one}/retry", self._guarded(self.retry))
        app.router.add_delete(one, self._guarded(self.drop))

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            credential = bearer(request)
            if credential is None or not same_secret(self.token, credential):
                return web.json_response(
                    {"error": "send `Authorization: Bearer TASKBOT_ADMIN_TOKEN`"}, status=401
                )
            return await handler(request)

        return guarded

    async def parked(self, request: web.Request) -> web.Response:
        source = request.query.get("source") or None
        rows = await self.bot.store.parked_deliveries(source)
        return web.json_response({"parked": rows})

    async def retry(self, request: web.Request) -> web.Response:
        source, delivery = request.match_info["source"], request.match_info["delivery_id"]
        if not await self.bot.store.retry_delivery(source, delivery):
            return web.json_response({"error": f"no parked delivery {delivery[:80]}"}, status=404)
        return web.json_response({"retried": delivery})

    async def drop(self, request: web.Request) -> web.Response:
        source, delivery = request.match_info["source"], request.match_info["delivery_id"]
        if not await self.bot.store.drop_delivery(source, delivery):
            return web.json_response({"error": f"no parked delivery {delivery[:80]}"}, status=404)
        return web.json_response({"dropped": delivery})
