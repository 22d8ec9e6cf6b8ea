"""The baseline: a FastAPI app answering a constant JSON, served like ``devpocket serve``.

One uvicorn process with the same options (uvloop and httptools when installed, the same
WebSocket implementation, no server header, no proxy headers), so that the ratio to it shows
what DevPocket adds per request. ``/echo`` is the WebSocket baseline: every text frame comes
straight back, the floor under a keystroke's round trip (``bench/terminal.py``).
"""

from __future__ import annotations

import argparse
import contextlib

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/bare")
async def bare() -> dict[str, str]:
    return {"status": "ok"}


@app.websocket("/echo")
async def echo(socket: WebSocket) -> None:
    await socket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.send_text(await socket.receive_text())


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the constant baseline endpoint GET /bare.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        ws="websockets-sansio",  # what devpocket serve's own protocol builds on
        proxy_headers=False,
        server_header=False,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
