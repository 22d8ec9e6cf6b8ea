"""The client's address, trusting ``X-Forwarded-For`` only from configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import cached_property

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddressResolver:
    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self._raw = tuple(trusted_proxies)

    @cached_property
    def _networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(p, strict=False) for p in self._raw)

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        """Walk ``X-Forwarded-For`` from the right, skipping trusted proxies.

        The first untrusted hop is the client; anything left of it could have been written by the
        client itself, so it is ignored.
        """
        current = peer or "unknown"
        if not forwarded_for or not self._raw or not self.is_trusted(current):
            return current
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            current = hop
            if not self.is_trusted(hop):
                break
        return current
