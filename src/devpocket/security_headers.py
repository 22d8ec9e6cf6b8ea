"""The outermost layer: host checks and the security headers of every answer, errors included.

- ``ALLOWED_HOSTS``: when set, a request for another ``Host`` is refused (400, in the envelope),
  except the probes (``/health…``), which load balancers call by address.
- Every answer: ``X-Content-Type-Options``, ``Referrer-Policy``, ``X-Frame-Options``,
  ``Cache-Control: no-store``, and a ``Content-Security-Policy``: none at all for JSON, what the
  interactive docs need for HTML.
- ``Strict-Transport-Security`` when the request came over TLS: directly, or through a trusted
  proxy that says so in ``X-Forwarded-Proto``.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devpocket.client_address import ClientAddressResolver
from devpocket.envelope import error_body
from devpocket.settings import Settings

BASELINE: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)
_API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Swagger UI at /docs loads its script and styles from jsDelivr and starts with an inline script.
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    b"style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    b"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'"
)
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.allowed_hosts = {h.lower() for h in settings.allowed_hosts}
        self.proxies = ClientAddressResolver(settings.trusted_proxies)

    def _secure(self, scope: Scope) -> bool:
        if scope.get("scheme") in {"https", "wss"}:
            return True
        forwarded = (_header(scope, b"x-forwarded-proto") or "").lower()
        if forwarded not in {"https", "wss"}:
            return False
        # Only a trusted proxy may say so (checked last: parsing addresses costs).
        client = scope.get("client")
        return client is not None and self.proxies.is_trusted(client[0])

    def _host_allowed(self, scope: Scope) -> bool:
        if not self.allowed_hosts or scope["path"].startswith("/health"):
            return True
        host = (_header(scope, b"host") or "").rsplit(":", 1)[0].lower()
        return host in self.allowed_hosts or "*" in self.allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [_HSTS] if self._secure(scope) else []
        if not self._host_allowed(scope):
            await self._refuse_host(send, extra)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                html = any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                headers.extend(BASELINE)
                headers.append((b"content-security-policy", _DOCS_CSP if html else _API_CSP))
                headers.extend(extra)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse_host(send: Send, extra: list[tuple[bytes, bytes]]) -> None:
        payload = orjson.dumps(error_body("This host name is not served here.", "invalid_host"))
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *BASELINE,
                    (b"content-security-policy", _API_CSP),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
