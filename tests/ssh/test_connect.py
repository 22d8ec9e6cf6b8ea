"""Connection tests against real OpenSSH servers (see tests/sshd.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from devpocket.ssh import connect
from devpocket.ssh.connect import ConnectionReport, SSHConnectError, Target
from devpocket.ssh.keys import MAX_BCRYPT_ROUNDS
from tests.key_files import rewrite_openssh
from tests.sshd import SshServer

TIMEOUT = 5.0
WRONG_FINGERPRINT = "SHA256:" + "A" * 43


def target_for(server: SshServer, **changes: Any) -> Target:
    """Password login to ``server``, trusting its key on first use, unless ``changes`` say else."""
    base = Target(
        host=server.host,
        port=server.port,
        username=server.username,
        password=server.password,
        private_key=None,
        passphrase=None,
        pinned_host_key=None,
        strict_host_key=False,
        connect_timeout=TIMEOUT,
    )
    return dataclasses.replace(base, **changes)


def assert_no_secrets(report: ConnectionReport, server: SshServer) -> None:
    """No message, down the jump chain, repeats a password, a passphrase or key material."""
    key_lines = [
        line
        for key in (server.client_key, server.encrypted_client_key)
        for line in key.splitlines()
        if len(line) > 20
    ]
    secrets = [server.password, server.client_key_passphrase, "wrong-passphrase", *key_lines]
    current: ConnectionReport | None = report
    while current is not None:
        assert current.message
        assert not [secret for secret in secrets if secret in current.message], current.message
        current = current.jump


def auth_requests(log: list[str]) -> list[str]:
    # sshd logs one of these (at LogLevel DEBUG1) for every authentication attempt it receives.
    return [line for line in log if "userauth-request" in line]


async def test_password_login_reports_server_and_host_key(ssh_server: SshServer) -> None:
    mark = ssh_server.log_mark()
    report = await connect.test_connection(target_for(ssh_server))

    assert report.success, report
    assert report.code is None
    assert report.server_version is not None
    assert report.server_version.startswith("SSH-2.0-OpenSSH")
    assert report.host_key_type == ssh_server.host_key_type == "ssh-ed25519"
    assert report.host_key_fingerprint == ssh_server.host_key_fingerprint
    assert report.expected_fingerprint is None
    assert report.jump is None
    assert report.response_time_ms >= 0
    log = await asyncio.to_thread(ssh_server.wait_for_log, mark, "Accepted password")
    assert any("method password" in line for line in auth_requests(log))


async def test_key_login_offers_only_the_given_key(ssh_server: SshServer) -> None:
    mark = ssh_server.log_mark()
    report = await connect.test_connection(
        target_for(ssh_server, password=None, private_key=ssh_server.client_key)
    )

    assert report.success, report
    assert report.host_key_fingerprint == ssh_server.host_key_fingerprint
    log = await asyncio.to_thread(ssh_server.wait_for_log, mark, "Accepted publickey")
    assert not [line for line in auth_requests(log) if "method password" in line]


async def test_encrypted_key_with_its_passphrase_logs_in(ssh_server: SshServer) -> None:
    target = target_for(
        ssh_server,
        password=None,
        private_key=ssh_server.encrypted_client_key,
        passphrase=ssh_server.client_key_passphrase,
    )
    report = await connect.test_connection(target)

    assert report.success, report


@pytest.mark.parametrize(
    ("key_name", "passphrase", "code"),
    [
        ("encrypted_client_key", None, "key_passphrase_required"),
        ("encrypted_client_key", "wrong-passphrase", "key_passphrase_incorrect"),
        ("not a key", None, "key_invalid"),
    ],
)
async def test_unusable_private_key_is_refused_before_connecting(
    ssh_server: SshServer, key_name: str, passphrase: str | None, code: str
) -> None:
    private_key = getattr(ssh_server, key_name, key_name)
    target = target_for(ssh_server, password=None, private_key=private_key, passphrase=passphrase)
    report = await connect.test_connection(target)

    assert not report.success
    assert report.code == code
    # Refused before connecting: no server was contacted.
    assert report.server_version is None
    assert report.host_key_fingerprint is None
    assert_no_secrets(report, ssh_server)


async def test_wrong_password_is_auth_failed(ssh_server: SshServer) -> None:
    report = await connect.test_connection(target_for(ssh_server, password="not-the-password"))

    assert report.code == "auth_failed"
    assert not report.success
    # The key was seen, and can be shown, even though the login failed.
    assert report.host_key_fingerprint == ssh_server.host_key_fingerprint
    assert "not-the-password" not in report.message
    assert_no_secrets(report, ssh_server)


async def test_closed_port_is_host_unreachable(ssh_server: SshServer, closed_port: int) -> None:
    report = await connect.test_connection(target_for(ssh_server, port=closed_port))

    assert report.code == "host_unreachable"
    assert report.server_version is None
    assert_no_secrets(report, ssh_server)


async def test_unresolvable_host_is_host_unreachable(ssh_server: SshServer) -> None:
    report = await connect.test_connection(target_for(ssh_server, host="no-such-host.invalid"))

    assert report.code == "host_unreachable"
    assert "no-such-host.invalid" in report.message


async def test_a_key_too_costly_to_decrypt_is_refused_before_any_work(
    ssh_server: SshServer,
) -> None:
    """Its bcrypt rounds are the key owner's choice: billions would hold a thread for years."""
    costly = rewrite_openssh(ssh_server.encrypted_client_key, rounds=MAX_BCRYPT_ROUNDS + 1)
    target = target_for(
        ssh_server, password=None, private_key=costly, passphrase=ssh_server.client_key_passphrase
    )
    report = await connect.test_connection(target)

    assert report.code == "key_encryption_unsupported"
    assert_no_secrets(report, ssh_server)


async def test_server_that_never_speaks_ends_in_timeout(
    ssh_server: SshServer, silent_port: int
) -> None:
    target = target_for(ssh_server, port=silent_port, connect_timeout=0.5)
    report = await connect.test_connection(target)

    assert report.code == "timeout"
    assert report.response_time_ms >= 500
    assert "0.5 s" in report.message
    assert_no_secrets(report, ssh_server)


async def test_http_server_is_protocol_error(ssh_server: SshServer, http_port: int) -> None:
    report = await connect.test_connection(target_for(ssh_server, port=http_port))

    # The HTTP server answers the SSH greeting with "400 Bad Request" and hangs up.
    assert report.code == "protocol_error"
    assert report.server_version is None
    assert report.host_key_fingerprint is None
    assert_no_secrets(report, ssh_server)


async def test_pinned_fingerprint_that_matches_logs_in(ssh_server: SshServer) -> None:
    pinned = ssh_server.host_key_fingerprint
    report = await connect.test_connection(
        target_for(ssh_server, pinned_host_key=pinned, strict_host_key=True)
    )

    assert report.success, report
    assert report.host_key_fingerprint == pinned


async def test_pinned_fingerprint_that_differs_sends_no_credentials(
    ssh_server: SshServer,
) -> None:
    mark = ssh_server.log_mark()
    report = await connect.test_connection(
        target_for(ssh_server, pinned_host_key=WRONG_FINGERPRINT)
    )

    assert report.code == "host_key_mismatch"
    assert report.expected_fingerprint == WRONG_FINGERPRINT
    assert report.host_key_fingerprint == ssh_server.host_key_fingerprint
    assert report.host_key_type == "ssh-ed25519"
    assert_no_secrets(report, ssh_server)
    # sshd saw this very connection end (so its log is complete), and no authentication
    # request of any kind reached it: not "none", not "password".
    log = await asyncio.to_thread(ssh_server.wait_for_log, mark, "Host key is not trusted")
    assert any("Connection from 127.0.0.1" in line for line in log)
    assert auth_requests(log) == []


async def test_strict_checking_without_a_pin_is_host_key_unknown(ssh_server: SshServer) -> None:
    mark = ssh_server.log_mark()
    report = await connect.test_connection(target_for(ssh_server, strict_host_key=True))

    assert report.code == "host_key_unknown"
    # What the user needs to decide whether to pin it.
    assert report.host_key_type == ssh_server.host_key_type
    assert report.host_key_fingerprint == ssh_server.host_key_fingerprint
    assert report.expected_fingerprint is None
    assert_no_secrets(report, ssh_server)
    log = await asyncio.to_thread(ssh_server.wait_for_log, mark, "Host key is not trusted")
    assert auth_requests(log) == []


async def test_changed_host_key_is_a_mismatch_against_the_first_one(
    own_ssh_server: SshServer,
) -> None:
    first = await connect.test_connection(target_for(own_ssh_server))
    assert first.success, first
    assert first.host_key_fingerprint is not None

    await asyncio.to_thread(own_ssh_server.replace_host_key)
    report = await connect.test_connection(
        target_for(own_ssh_server, pinned_host_key=first.host_key_fingerprint)
    )

    assert report.code == "host_key_mismatch"
    assert report.expected_fingerprint == first.host_key_fingerprint
    assert report.host_key_fingerprint == own_ssh_server.host_key_fingerprint
    assert report.host_key_fingerprint != first.host_key_fingerprint


async def test_login_through_jump_host_reports_both_host_keys(
    ssh_server: SshServer, jump_server: SshServer
) -> None:
    mark = jump_server.log_mark()
    target = target_for(ssh_server, jump=target_for(jump_server))
    report = await connect.test_connection(target)

    assert report.success, report
    assert report.host_key_fingerprint == ssh_server.host_key_fingerprint
    assert report.jump is not None
    assert report.jump.success
    assert report.jump.host_key_fingerprint == jump_server.host_key_fingerprint
    assert report.jump.server_version is not None
    # The final host was reached through the jump host's forwarding, not directly.
    log = await asyncio.to_thread(jump_server.wait_for_log, mark, "server_request_direct_tcpip")
    forwarded = [line for line in log if "server_request_direct_tcpip" in line]
    assert any(f"target {ssh_server.host} port {ssh_server.port}" in line for line in forwarded)


@pytest.mark.parametrize(
    ("jump_changes", "inner_code"),
    [
        ({"password": "not-the-password"}, "auth_failed"),
        ({"pinned_host_key": WRONG_FINGERPRINT}, "host_key_mismatch"),
    ],
)
async def test_failing_jump_host_is_jump_host_failed(
    ssh_server: SshServer, jump_server: SshServer, jump_changes: dict[str, Any], inner_code: str
) -> None:
    target = target_for(ssh_server, jump=target_for(jump_server, **jump_changes))
    report = await connect.test_connection(target)

    assert report.code == "jump_host_failed"
    assert report.host_key_fingerprint is None
    assert report.jump is not None
    assert report.jump.code == inner_code
    assert report.jump.host_key_fingerprint == jump_server.host_key_fingerprint
    assert_no_secrets(report, ssh_server)


async def test_jump_host_that_forbids_forwarding_is_jump_host_failed(
    ssh_server: SshServer, jump_server: SshServer
) -> None:
    # ssh_server runs with AllowTcpForwarding no.
    target = target_for(jump_server, jump=target_for(ssh_server))
    report = await connect.test_connection(target)

    assert report.code == "jump_host_failed"
    assert report.jump is not None
    assert report.jump.success


async def test_final_host_the_jump_host_cannot_reach_is_host_unreachable(
    ssh_server: SshServer, jump_server: SshServer, closed_port: int
) -> None:
    target = target_for(ssh_server, port=closed_port, jump=target_for(jump_server))
    report = await connect.test_connection(target)

    assert report.code == "host_unreachable"
    assert report.jump is not None
    assert report.jump.host_key_fingerprint == jump_server.host_key_fingerprint


async def test_open_connection_yields_an_authenticated_connection(ssh_server: SshServer) -> None:
    async with connect.open_connection(target_for(ssh_server)) as conn:
        key = conn.get_server_host_key()
        assert key is not None
        assert key.get_fingerprint("sha256") == ssh_server.host_key_fingerprint
        assert conn.get_extra_info("username") == ssh_server.username


async def test_open_connection_raises_with_the_code(ssh_server: SshServer) -> None:
    with pytest.raises(SSHConnectError) as caught:
        async with connect.open_connection(target_for(ssh_server, password="nope")):
            pass

    assert caught.value.code == "auth_failed"
    assert caught.value.report.code == "auth_failed"


def test_target_repr_hides_credentials(ssh_server: SshServer) -> None:
    target = target_for(
        ssh_server, private_key=ssh_server.client_key, passphrase="wrong-passphrase"
    )

    assert ssh_server.password not in repr(target)
    assert "wrong-passphrase" not in repr(target)
    assert "PRIVATE KEY" not in repr(target)
