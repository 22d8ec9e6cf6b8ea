"""uvicorn's WebSocket protocol, closing with 1001 (going away) when the server shuts down.

uvicorn closes open sockets with 1012 (service restart) before the application hears of the
shutdown. DevPocket documents 1001 for a server going away ("reconnect, then reattach"), so
``devpocket serve`` runs uvicorn with this protocol (``ws=``), in every worker.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from devpocket.terminal.protocol import CloseCode

_REASON = "server shutting down: reconnect and reattach"


class GoingAwayProtocol(WebSocketsSansIOProtocol):
    def shutdown(self) -> None:
        if self.close_sent or not self.handshake_complete:
            super().shutdown()
            return
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": int(CloseCode.GOING_AWAY)})
        self.conn.send_close(int(CloseCode.GOING_AWAY), _REASON)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()
