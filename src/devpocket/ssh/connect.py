"""Opening SSH connections with asyncssh, and testing them (connect, authenticate, disconnect).

Host keys are trusted on first use. asyncssh is given an empty known-hosts list, so every key a
server presents goes to :meth:`_HostKeyPolicy.validate_host_public_key` during the key exchange,
before any authentication request: a server whose key is refused never sees our credentials. A
key accepted without a pin is reported (type and SHA256 fingerprint) so that the caller can pin
it; pinning a key the server has not yet proven to hold is harmless, because every later
connection makes the server prove it.

Nothing on this machine influences a connection: no ``~/.ssh/config``, ``known_hosts``, default
keys, agent or GSSAPI; only the credentials in :class:`Target` are offered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncssh

from devpocket.errors import UpstreamUnavailable
from devpocket.ssh import keys

# Closing is polite; a peer that does not answer the disconnect must not hold us up.
CLOSE_TIMEOUT = 5.0
# asyncssh's wording (2.x) is the only thing that tells these two key import failures apart.
_ASYNCSSH_NEEDS_DECRYPTION = "Passphrase must be specified"
_ASYNCSSH_DECRYPTION_FAILED = "Incorrect passphrase"
_KDF_REFUSED = (
    "key_encryption_unsupported",
    "The private key's key derivation is too costly to decrypt here: re-encrypt it with "
    "ssh-keygen -p.",
)


@dataclass(frozen=True)
class Target:
    """Where to connect and how to log in; ``jump`` is reached first and tunnels to this host.

    ``connect_timeout`` bounds connecting and authenticating this hop; a jump host has its own.
    """

    host: str
    port: int
    username: str
    password: str | None
    private_key: str | None
    passphrase: str | None
    pinned_host_key: str | None  # "SHA256:…", as ``ssh-keygen -lf`` prints it
    strict_host_key: bool
    connect_timeout: float
    jump: Target | None = None

    def __repr__(self) -> str:
        # Never let a password, key or passphrase reach a log line or a traceback.
        return f"Target({self.username}@{self.host}:{self.port}, jump={self.jump!r})"


@dataclass(frozen=True)
class ConnectionReport:
    """The outcome of one connection attempt; ``jump`` is the jump host's own report.

    The host key fields describe the key the server presented, also on failure (so that an
    unknown or changed key can be shown to the user); ``expected_fingerprint`` is set on
    ``host_key_mismatch``. ``response_time_ms`` covers connecting and authenticating, through
    the jump host when there is one.
    """

    success: bool
    code: str | None
    message: str
    response_time_ms: int
    server_version: str | None = None
    host_key_type: str | None = None
    host_key_fingerprint: str | None = None
    expected_fingerprint: str | None = None
    jump: ConnectionReport | None = None


class SSHConnectError(UpstreamUnavailable):
    """Connecting failed; ``code`` says why and ``report`` what was seen on the way."""

    default_code = "ssh_connect_failed"

    def __init__(self, report: ConnectionReport) -> None:
        super().__init__(report.message, code=report.code)
        self.report = report


def normalize_fingerprint(value: str) -> str:
    """``SHA256:<base64 without padding>``, the form asyncssh and ``ssh-keygen -lf`` print."""
    value = value.strip()
    body = value.split(":", 1)[1] if value.upper().startswith("SHA256:") else value
    return "SHA256:" + body.rstrip("=")


class _HostKeyPolicy(asyncssh.SSHClient):
    """Trust on first use, or a pinned fingerprint; remembers what it saw for the report."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self.connection: asyncssh.SSHClientConnection | None = None
        self.presented: asyncssh.SSHKey | None = None
        self.refusal: tuple[str, str] | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.connection = conn

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.presented = key
        where = f"{self._target.host}:{self._target.port}"
        presented = key.get_fingerprint("sha256")
        pinned = self._target.pinned_host_key
        if pinned is None:
            if not self._target.strict_host_key:
                return True
            self.refusal = (
                "host_key_unknown",
                f"The host key of {where} ({key.get_algorithm()} {presented}) is not pinned and "
                "strict host key checking is on; no credentials were sent.",
            )
            return False
        if normalize_fingerprint(pinned) == presented:
            return True
        self.refusal = (
            "host_key_mismatch",
            f"The host key of {where} has changed: expected {normalize_fingerprint(pinned)}, "
            f"got {presented}. No credentials were sent.",
        )
        return False

    @property
    def server_version(self) -> str | None:
        if self.connection is None:
            return None
        version: str | None = self.connection.get_extra_info("server_version")
        return version


@dataclass(frozen=True)
class _Hop:
    connection: asyncssh.SSHClientConnection
    report: ConnectionReport


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


_SUCCESS = (None, "Connected and authenticated.")


def _report(
    target: Target,
    policy: _HostKeyPolicy | None,
    started: float,
    jump: ConnectionReport | None,
    outcome: tuple[str | None, str] = _SUCCESS,
) -> ConnectionReport:
    """What one hop saw; ``outcome`` is ``(code, message)``, code None on success."""
    code, message = outcome
    key = policy.presented if policy else None
    pinned = target.pinned_host_key if code == "host_key_mismatch" else None
    return ConnectionReport(
        success=code is None,
        code=code,
        message=message,
        response_time_ms=_elapsed_ms(started),
        server_version=policy.server_version if policy else None,
        host_key_type=key.get_algorithm() if key else None,
        host_key_fingerprint=key.get_fingerprint("sha256") if key else None,
        expected_fingerprint=normalize_fingerprint(pinned) if pinned else None,
        jump=jump,
    )


async def _client_key(target: Target) -> asyncssh.SSHKey | None:
    """The decrypted client key; raises asyncssh's key import errors."""
    if target.private_key is None:
        return None
    # Key derivation (bcrypt for OpenSSH keys) is deliberately slow: keep it off the loop.
    return await asyncio.to_thread(
        asyncssh.import_private_key, target.private_key, target.passphrase
    )


def _key_failure(exc: asyncssh.KeyImportError | asyncssh.KeyEncryptionError) -> tuple[str, str]:
    # The exception text is never shown: it could in principle quote the key it choked on.
    if _ASYNCSSH_NEEDS_DECRYPTION in str(exc):
        return "key_passphrase_required", "The private key is encrypted; enter its passphrase."
    if _ASYNCSSH_DECRYPTION_FAILED in str(exc):
        return "key_passphrase_incorrect", "The passphrase for the private key is incorrect."
    return "key_invalid", "The private key could not be read (damaged or unsupported format)."


def _classify(target: Target, policy: _HostKeyPolicy, exc: Exception) -> tuple[str, str]:
    """A stable code and a message safe to show, for what went wrong while connecting."""
    where = f"{target.host}:{target.port}"
    if isinstance(exc, TimeoutError):
        return "timeout", f"{where} did not finish an SSH login in {target.connect_timeout:g} s."
    if isinstance(exc, asyncssh.HostKeyNotVerifiable) and policy.refusal:
        return policy.refusal
    if isinstance(exc, asyncssh.PermissionDenied):
        return "auth_failed", f"Authentication as {target.username!r} on {where} failed."
    if isinstance(exc, asyncssh.ChannelOpenError):
        if exc.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
            return "jump_host_failed", f"The jump host refused to forward to {where}."
        return "host_unreachable", f"The jump host could not reach {where}: {exc.reason}"
    if isinstance(exc, socket.gaierror):
        return "host_unreachable", f"The host name {target.host!r} could not be resolved."
    if isinstance(exc, OSError):
        return "host_unreachable", f"Could not reach {where}: {exc.strerror or 'network error'}."
    # No version line: whatever listens there (a web server, say) is not an SSH server.
    if policy.server_version is None:
        return "protocol_error", f"{where} did not answer as an SSH server."
    if isinstance(exc, asyncssh.ConnectionLost):
        return "connection_closed", f"{where} closed the connection during the SSH handshake."
    reason = exc.reason if isinstance(exc, asyncssh.DisconnectError) else type(exc).__name__
    return "protocol_error", f"SSH protocol error with {where}: {reason}"


def _connect_options(target: Target, key: asyncssh.SSHKey | None) -> dict[str, Any]:
    methods = (["publickey"] if key else []) + (
        ["keyboard-interactive", "password"] if target.password is not None else []
    )
    return {
        "username": target.username,
        "password": target.password,
        # None, not []: an empty list makes asyncssh load the default keys from ~/.ssh.
        "client_keys": [key] if key else None,
        "preferred_auth": methods,
        "public_key_auth": key is not None,
        # keyboard-interactive answers a password prompt: servers using PAM often offer only it.
        "kbdint_auth": target.password is not None,
        "password_auth": target.password is not None,
        # Empty, not None: None would accept every key; empty sends each to our validator.
        "known_hosts": asyncssh.SSHKnownHosts(),
        "config": [],
        "agent_path": None,
        "agent_identities": None,
        "agent_forwarding": False,
        "pkcs11_provider": None,
        "x509_trusted_certs": None,
        "x509_trusted_cert_paths": None,
        "gss_kex": False,
        "gss_auth": False,
        "host_based_auth": False,
    }


async def _connect(
    target: Target, tunnel: asyncssh.SSHClientConnection | None, jump: ConnectionReport | None
) -> _Hop:
    """Connect and authenticate one hop (through ``tunnel``), or raise :class:`SSHConnectError`."""
    started = time.perf_counter()
    if target.private_key is not None and keys.kdf_too_costly(target.private_key):
        raise SSHConnectError(_report(target, None, started, jump, _KDF_REFUSED))
    try:
        key = await _client_key(target)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        failed = _report(target, None, started, jump, _key_failure(exc))
        raise SSHConnectError(failed) from None
    policy = _HostKeyPolicy(target)
    try:
        async with asyncio.timeout(target.connect_timeout):
            conn = await asyncssh.connect(
                target.host,
                target.port,
                tunnel=tunnel if tunnel is not None else (),
                client_factory=lambda: policy,
                **_connect_options(target, key),
            )
    # OSError covers refused, unreachable, DNS failures and TimeoutError.
    except (asyncssh.Error, OSError) as exc:
        failed = _report(target, policy, started, jump, _classify(target, policy, exc))
        raise SSHConnectError(failed) from exc
    return _Hop(conn, _report(target, policy, started, jump))


async def _close(conn: asyncssh.SSHClientConnection) -> None:
    conn.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await conn.wait_closed()
    except TimeoutError:
        conn.abort()


@asynccontextmanager
async def _open_hops(target: Target) -> AsyncIterator[_Hop]:
    """The connection to ``target`` (through its jump hosts); closed last-opened first."""
    async with AsyncExitStack() as stack:
        jump: _Hop | None = None
        if target.jump is not None:
            started = time.perf_counter()
            try:
                jump = await stack.enter_async_context(_open_hops(target.jump))
            except SSHConnectError as exc:
                message = f"Could not connect through the jump host: {exc.report.message}"
                failed = _report(target, None, started, exc.report, ("jump_host_failed", message))
                raise SSHConnectError(failed) from exc
        hop = await _connect(
            target, jump.connection if jump else None, jump.report if jump else None
        )
        stack.push_async_callback(_close, hop.connection)
        yield hop


@asynccontextmanager
async def open_connection(target: Target) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """An authenticated connection, closed on exit; raises :class:`SSHConnectError`."""
    async with _open_hops(target) as hop:
        yield hop.connection


@asynccontextmanager
async def open_reported(
    target: Target,
) -> AsyncIterator[tuple[asyncssh.SSHClientConnection, ConnectionReport]]:
    """:func:`open_connection`, with the report of connecting (for pinning the host key)."""
    async with _open_hops(target) as hop:
        yield hop.connection, hop.report


async def test_connection(target: Target) -> ConnectionReport:
    """Connect, authenticate, run nothing and disconnect; report what happened."""
    started = time.perf_counter()
    try:
        async with _open_hops(target) as hop:
            report = hop.report
            elapsed = _elapsed_ms(started)
    except SSHConnectError as exc:
        return dataclasses.replace(exc.report, response_time_ms=_elapsed_ms(started))
    return dataclasses.replace(report, response_time_ms=elapsed)
