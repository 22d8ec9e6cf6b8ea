"""Connection tests through the API against real sshd: pinning, mismatch, jump hosts, limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from devpocket.ssh import probe
from tests.conftest import SettingsFactory, serving
from tests.helpers import Account, data, error, register
from tests.sshd import SshServer

PROFILES = "/api/v1/ssh/profiles"


async def _saved(client: httpx.AsyncClient, account: Account, body: dict[str, Any]) -> str:
    created = data(await client.post(PROFILES, json=body, headers=account.headers), 201)
    return str(created["id"])


async def _test(client: httpx.AsyncClient, account: Account, profile_id: str) -> dict[str, Any]:
    result = data(await client.post(f"{PROFILES}/{profile_id}/test", headers=account.headers))
    assert isinstance(result, dict)
    return result


async def test_first_success_pins_the_host_key(
    client: httpx.AsyncClient, ssh_server: SshServer
) -> None:
    account = await register(client)
    profile_id = await _saved(client, account, ssh_server.profile())
    result = await _test(client, account, profile_id)
    assert result["success"] is True, result
    assert result["error"] is None
    assert result["response_time"] >= 0
    assert result["host_key_fingerprint"] == ssh_server.host_key_fingerprint
    assert result["server_version"].startswith("SSH-2.0-OpenSSH")
    profile = data(await client.get(f"{PROFILES}/{profile_id}", headers=account.headers))
    assert profile["host_key_fingerprint"] == ssh_server.host_key_fingerprint
    assert profile["status"] == "active"
    assert profile["last_connected_at"] is not None


async def test_changed_host_key_is_refused_until_accepted(
    client: httpx.AsyncClient, own_ssh_server: SshServer
) -> None:
    account = await register(client)
    profile_id = await _saved(client, account, own_ssh_server.profile())
    assert (await _test(client, account, profile_id))["success"] is True
    old = own_ssh_server.host_key_fingerprint
    own_ssh_server.replace_host_key()
    refused = await _test(client, account, profile_id)
    assert refused["success"] is False
    assert refused["error"] == "host_key_mismatch"
    assert refused["expected_host_key_fingerprint"] == old
    assert refused["host_key_fingerprint"] == own_ssh_server.host_key_fingerprint
    profile = data(await client.get(f"{PROFILES}/{profile_id}", headers=account.headers))
    assert profile["host_key_fingerprint"] == old
    assert profile["status"] == "failed"
    accept = {"fingerprint": own_ssh_server.host_key_fingerprint}
    data(
        await client.post(f"{PROFILES}/{profile_id}/host-key", json=accept, headers=account.headers)
    )
    assert (await _test(client, account, profile_id))["success"] is True


async def test_key_from_the_vault_and_strict_mode(
    client: httpx.AsyncClient, ssh_server: SshServer
) -> None:
    account = await register(client)
    body = {"name": "client", "private_key": ssh_server.client_key}
    key = data(await client.post("/api/v1/ssh/keys", json=body, headers=account.headers), 201)
    strict = ssh_server.profile(password=None, auth_type="KEY", key_id=key["id"])
    strict["strict_host_key"] = True
    profile_id = await _saved(client, account, strict)
    unknown = await _test(client, account, profile_id)
    assert unknown["error"] == "host_key_unknown"
    pinned = {"host_key_fingerprint": ssh_server.host_key_fingerprint}
    url = f"{PROFILES}/{profile_id}"
    data(await client.put(url, json=pinned, headers=account.headers))
    assert (await _test(client, account, profile_id))["success"] is True
    keys = data(await client.get("/api/v1/ssh/keys", headers=account.headers))["keys"]
    assert keys[0]["last_used_at"] is not None
    assert keys[0]["used_by_profiles"] == 1


async def test_through_a_jump_host(
    client: httpx.AsyncClient, ssh_server: SshServer, jump_server: SshServer
) -> None:
    account = await register(client)
    bastion = await _saved(client, account, jump_server.profile(name="bastion"))
    inner = await _saved(client, account, ssh_server.profile(name="inner", jump_profile_id=bastion))
    result = await _test(client, account, inner)
    assert result["success"] is True, result
    assert result["jump"]["success"] is True
    assert result["jump"]["host_key_fingerprint"] == jump_server.host_key_fingerprint
    bastion_profile = data(await client.get(f"{PROFILES}/{bastion}", headers=account.headers))
    assert bastion_profile["host_key_fingerprint"] == jump_server.host_key_fingerprint


async def test_failures_have_codes_and_leak_nothing(
    client: httpx.AsyncClient, ssh_server: SshServer
) -> None:
    account = await register(client)
    wrong = "definitely-not-the-password"
    with capture_logs() as logs:
        profile_id = await _saved(client, account, ssh_server.profile(password=wrong))
        result = await _test(client, account, profile_id)
        unsaved = await client.post(
            "/api/v1/ssh/test-connection",
            json=ssh_server.profile(password=None, private_key=ssh_server.encrypted_client_key),
            headers=account.headers,
        )
    assert result["error"] == "auth_failed"
    assert data(unsaved)["error"] == "key_passphrase_required"
    for text in (repr(result), unsaved.text, repr(logs)):
        assert wrong not in text
        assert "PRIVATE KEY" not in text


async def test_unsaved_profile_with_passphrase(
    client: httpx.AsyncClient, ssh_server: SshServer
) -> None:
    account = await register(client)
    body = ssh_server.profile(
        password=None,
        private_key=ssh_server.encrypted_client_key,
        passphrase=ssh_server.client_key_passphrase,
    )
    response = await client.post("/api/v1/ssh/test-connection", json=body, headers=account.headers)
    assert data(response)["success"] is True


async def test_tests_are_rate_limited_per_user(
    settings_factory: SettingsFactory, ssh_server: SshServer
) -> None:
    async with serving(settings_factory(ssh_tests_per_user="2/minute")) as (_, client):
        account = await register(client)
        profile_id = await _saved(client, account, ssh_server.profile())
        for _ in range(2):
            await _test(client, account, profile_id)
        refused = await client.post(f"{PROFILES}/{profile_id}/test", headers=account.headers)
        error(refused, 429, "ssh_test_throttled")


async def test_private_targets_are_refused_when_blocked(
    settings_factory: SettingsFactory, ssh_server: SshServer
) -> None:
    async with serving(settings_factory(ssh_block_private_targets=True)) as (_, client):
        account = await register(client)
        for host in ("127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254"):
            body = ssh_server.profile(host=host)
            response = await client.post(
                "/api/v1/ssh/test-connection", json=body, headers=account.headers
            )
            error(response, 403, "target_not_allowed")


async def test_a_name_that_does_not_resolve_in_time_is_not_connected_to_when_blocked(
    settings_factory: SettingsFactory, ssh_server: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connecting by the name after a failed check would resolve it again, perhaps elsewhere."""
    monkeypatch.setattr(probe, "_RESOLVE_TIMEOUT", 0)  # every lookup times out
    async with serving(settings_factory(ssh_block_private_targets=True)) as (_, client):
        account = await register(client)
        body = ssh_server.profile(host="localhost")
        response = await client.post(
            "/api/v1/ssh/test-connection", json=body, headers=account.headers
        )
        result = data(response)
        assert (result["success"], result["error"]) == (False, "host_unreachable")
        profile_id = await _saved(client, account, body)
        assert (await _test(client, account, profile_id))["error"] == "host_unreachable"


async def test_a_failed_login_pins_nothing(
    client: httpx.AsyncClient, ssh_server: SshServer
) -> None:
    account = await register(client)
    body = ssh_server.profile(password="wrong-password-here")
    profile_id = await _saved(client, account, body)
    assert (await _test(client, account, profile_id))["error"] == "auth_failed"
    profile = data(await client.get(f"{PROFILES}/{profile_id}", headers=account.headers))
    assert profile["host_key_fingerprint"] is None
    assert profile["status"] == "failed"
    text = (await client.get("/metrics")).text
    assert 'devpocket_ssh_connection_tests_total{outcome="auth_failed"}' in text
