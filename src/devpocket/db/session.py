"""The unit of work: one request, one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.hooks import discard_after_commit, run_after_commit
from devpocket.errors import AppError


async def _commit(session: AsyncSession) -> None:
    await session.commit()
    await run_after_commit(session)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit when the endpoint returns, roll back when it raises; before the answer is sent.

    An ``AppError`` with ``keep_changes`` (refresh-token reuse revoking a session) commits what
    the service did before raising: the refusal and its consequence belong together.
    """
    async with request.app.state.ctx.sessionmaker() as session:
        try:
            yield session
        except AppError as error:
            if error.keep_changes:
                await _commit(session)
            raise
        else:
            await _commit(session)
        finally:
            # Whatever did not commit is undone, and its after-commit work forgotten.
            if session.in_transaction():
                await session.rollback()
            discard_after_commit(session)


# scope="function": the commit happens before the response is sent, so a failed commit is an
# error answer rather than a success the database never saw.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
