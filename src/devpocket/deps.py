"""Dependencies shared by every domain: the app context and the caller's address.

All are ``async def``: FastAPI runs plain ``def`` dependencies in the thread pool, a thread hop
on every request for nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from devpocket.auth.sessions import ClientInfo
from devpocket.context import AppContext


async def _context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(_context)]


async def _client(request: Request, ctx: Ctx) -> ClientInfo:
    peer = request.client.host if request.client else None
    ip = ctx.client_addresses.resolve(peer, request.headers.get("x-forwarded-for"))
    return ClientInfo(ip=ip, user_agent=request.headers.get("user-agent"))


Client = Annotated[ClientInfo, Depends(_client)]
