"""Key rotation re-encrypts the vault under the current key, batch by batch, never losing a row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Update, event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from devpocket.db.engine import create_engine, create_sessionmaker
from devpocket.db.models import SshKey, SshProfile, User
from devpocket.db.writer import UnitOfWorkSession
from devpocket.settings import ConfigurationError, Settings
from devpocket.ssh.rotation import rotate_encryption, rotate_encryption_command
from devpocket.ssh.secrets import DEV_KEYRING_FILE, SecretBox, context_for, generate_key_entry
from tests.conftest import SettingsFactory

KEY_A = generate_key_entry("a")
KEY_B = generate_key_entry("b")
KEY_C = generate_key_entry("c")
OLD = SecretBox.from_text(KEY_A)
ROTATED = SecretBox.from_text(f"{KEY_B},{KEY_A}")
# Created long ago, so that a rotation touching updated_at would show.
CREATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
PROFILE_FIELDS = ("password", "private_key", "passphrase")

Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> Sessionmaker:
    return create_sessionmaker(engine)


async def _user(sessionmaker: Sessionmaker) -> uuid.UUID:
    name = f"r_{uuid.uuid4().hex[:10]}"
    user = User(
        email=f"{name}@example.com",
        username=name,
        username_key=name,
        created_at=CREATED,
        updated_at=CREATED,
        preferences={},
    )
    async with sessionmaker() as session:
        session.add(user)
        await session.commit()
    return user.id


def _secret(row_id: uuid.UUID, field: str) -> str:
    return f"{field} of {row_id}"


async def _seed(
    sessionmaker: Sessionmaker, box: SecretBox, *, keys: int, profiles: int
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Vault rows whose secrets are ``_secret(id, field)`` sealed by ``box``."""
    user_id = await _user(sessionmaker)
    key_ids, profile_ids = (
        [uuid.uuid4() for _ in range(keys)],
        [uuid.uuid4() for _ in range(profiles)],
    )
    async with sessionmaker() as session:
        for key_id in key_ids:
            session.add(
                SshKey(
                    id=key_id,
                    user_id=user_id,
                    name="key",
                    key_type="ed25519",
                    bits=256,
                    public_key="ssh-ed25519 AAAA",
                    fingerprint=f"SHA256:{key_id.hex}",
                    private_key_encrypted=_seal(box, "ssh_keys", key_id, "private_key"),
                    passphrase_encrypted=None,
                    created_at=CREATED,
                    updated_at=CREATED,
                )
            )
        for profile_id in profile_ids:
            sealed = {
                f"{field}_encrypted": _seal(box, "ssh_profiles", profile_id, field)
                for field in PROFILE_FIELDS
            }
            session.add(
                SshProfile(
                    id=profile_id,
                    user_id=user_id,
                    name="host",
                    host="203.0.113.7",
                    username="deploy",
                    created_at=CREATED,
                    updated_at=CREATED,
                    **sealed,
                )
            )
        await session.commit()
    return key_ids, profile_ids


def _seal(box: SecretBox, table: str, row_id: uuid.UUID, field: str) -> str:
    return box.encrypt(_secret(row_id, field), context=context_for(table, row_id, field))


async def _profile_tokens(sessionmaker: Sessionmaker) -> dict[uuid.UUID, dict[str, str | None]]:
    async with sessionmaker() as session:
        profiles = (await session.scalars(select(SshProfile))).all()
        return {
            profile.id: {field: getattr(profile, f"{field}_encrypted") for field in PROFILE_FIELDS}
            for profile in profiles
        }


async def _assert_all_under(sessionmaker: Sessionmaker, box: SecretBox, key_id: str) -> None:
    async with sessionmaker() as session:
        keys = (await session.scalars(select(SshKey))).all()
        profiles = (await session.scalars(select(SshProfile))).all()
    for key in keys:
        assert box.key_id_of(key.private_key_encrypted) == key_id
        context = context_for("ssh_keys", key.id, "private_key")
        assert box.decrypt(key.private_key_encrypted, context=context) == _secret(
            key.id, "private_key"
        )
        assert key.passphrase_encrypted is None
        assert key.updated_at == CREATED
    for profile in profiles:
        assert profile.updated_at == CREATED
        for field in PROFILE_FIELDS:
            token = getattr(profile, f"{field}_encrypted")
            assert box.key_id_of(token) == key_id
            context = context_for("ssh_profiles", profile.id, field)
            assert box.decrypt(token, context=context) == _secret(profile.id, field)


async def test_rotation_re_encrypts_everything_under_the_current_key(
    sessionmaker: Sessionmaker,
) -> None:
    await _seed(sessionmaker, OLD, keys=2, profiles=3)
    report = await rotate_encryption(sessionmaker, ROTATED)
    await _assert_all_under(sessionmaker, ROTATED, "b")
    assert report.current_key_id == "b"
    counts = {f"{table}.{column}": c.re_encrypted for (table, column), c in report.columns.items()}
    assert counts == {
        "ssh_keys.private_key_encrypted": 2,
        "ssh_keys.passphrase_encrypted": 0,
        "ssh_profiles.password_encrypted": 3,
        "ssh_profiles.private_key_encrypted": 3,
        "ssh_profiles.passphrase_encrypted": 3,
    }
    assert (report.already_current, report.unreadable) == (0, 0)


async def test_a_second_rotation_finds_everything_current(sessionmaker: Sessionmaker) -> None:
    await _seed(sessionmaker, OLD, keys=2, profiles=3)
    await rotate_encryption(sessionmaker, ROTATED)
    before = await _profile_tokens(sessionmaker)
    report = await rotate_encryption(sessionmaker, ROTATED)
    assert (report.re_encrypted, report.already_current, report.unreadable) == (0, 11, 0)
    assert await _profile_tokens(sessionmaker) == before


async def test_unreadable_secrets_are_reported_and_left_untouched(
    sessionmaker: Sessionmaker,
) -> None:
    _, (readable, foreign, moved) = await _seed(sessionmaker, OLD, keys=0, profiles=3)
    async with sessionmaker() as session:
        foreign_row = await session.get_one(SshProfile, foreign)
        # Under a key the keyring does not hold.
        foreign_row.password_encrypted = _seal(
            SecretBox.from_text(KEY_C), "ssh_profiles", foreign, "password"
        )
        # Copied from another row: it does not authenticate here.
        moved_row = await session.get_one(SshProfile, moved)
        moved_row.password_encrypted = _seal(OLD, "ssh_profiles", readable, "password")
        moved_row.passphrase_encrypted = "not a token"
        await session.commit()
    before = await _profile_tokens(sessionmaker)

    report = await rotate_encryption(sessionmaker, ROTATED)

    after = await _profile_tokens(sessionmaker)
    password = report.columns[("ssh_profiles", "password_encrypted")]
    passphrase = report.columns[("ssh_profiles", "passphrase_encrypted")]
    assert (password.re_encrypted, password.unreadable) == (1, 2)
    assert sorted(password.unreadable_ids) == sorted([foreign, moved])
    assert passphrase.unreadable_ids == [moved]
    assert report.unreadable == 3
    assert after[foreign]["password"] == before[foreign]["password"]
    assert after[moved]["password"] == before[moved]["password"]
    assert after[moved]["passphrase"] == "not a token"
    assert ROTATED.key_id_of(after[moved]["private_key"] or "") == "b"
    assert any(f"unreadable: ssh_profiles {moved}" in line for line in report.summary())


async def test_rotation_walks_every_row_in_batches(
    sessionmaker: Sessionmaker, engine: AsyncEngine
) -> None:
    await _seed(sessionmaker, OLD, keys=0, profiles=5)
    batches: list[str] = []

    def count_batches(*args: Any) -> None:
        statement: str = args[2]
        if statement.lstrip().upper().startswith("SELECT") and "ssh_profiles" in statement:
            batches.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count_batches)
    try:
        report = await rotate_encryption(sessionmaker, ROTATED, batch_size=2)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count_batches)

    assert len(batches) == 3  # 2 + 2 + 1 rows
    assert report.columns[("ssh_profiles", "password_encrypted")].re_encrypted == 5
    await _assert_all_under(sessionmaker, ROTATED, "b")


def _interrupted_before_first_update(
    engine: AsyncEngine, sessionmaker: Sessionmaker, interrupt: Callable[[], Awaitable[None]]
) -> Sessionmaker:
    """Sessions that run ``interrupt`` between the walk's read of a batch and its first update."""
    fired = False

    class InterruptedSession(UnitOfWorkSession):
        write_lock = getattr(sessionmaker.class_, "write_lock", None)

        async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal fired
            if isinstance(statement, Update) and not fired:
                fired = True
                await interrupt()
            return await super().execute(statement, *args, **kwargs)

    return async_sessionmaker(engine, class_=InterruptedSession, expire_on_commit=False)


async def test_a_secret_a_server_changes_during_the_walk_is_kept(
    sessionmaker: Sessionmaker, engine: AsyncEngine
) -> None:
    _, (profile_id,) = await _seed(sessionmaker, OLD, keys=0, profiles=1)
    written_by_server = OLD.encrypt(
        "changed", context=context_for("ssh_profiles", profile_id, "password")
    )

    async def server_writes() -> None:
        async with sessionmaker() as session:
            row = await session.get_one(SshProfile, profile_id)
            row.password_encrypted = written_by_server
            await session.commit()

    walker = _interrupted_before_first_update(engine, sessionmaker, server_writes)
    report = await rotate_encryption(walker, ROTATED)

    password = report.columns[("ssh_profiles", "password_encrypted")]
    assert (password.changed_meanwhile, password.re_encrypted) == (1, 0)
    assert report.re_encrypted == 2
    tokens = (await _profile_tokens(sessionmaker))[profile_id]
    assert tokens["password"] == written_by_server
    assert ROTATED.key_id_of(tokens["passphrase"] or "") == "b"


async def test_command_generates_a_development_key_and_rotates_to_it(
    settings: Settings, sessionmaker: Sessionmaker
) -> None:
    original = SecretBox.from_text(settings.encryption_keyring_text())
    await _seed(sessionmaker, original, keys=1, profiles=2)

    report = await asyncio.to_thread(rotate_encryption_command, settings, generate=True)

    keyring_text = (settings.data_dir / DEV_KEYRING_FILE).read_text(encoding="utf-8")
    current = SecretBox.from_text(keyring_text)
    assert current.keyring.ids[1:] == original.keyring.ids
    assert report.current_key_id == current.keyring.current_id
    assert report.re_encrypted == 7
    await _assert_all_under(sessionmaker, current, current.keyring.current_id)


async def test_command_rotates_to_a_configured_key(
    settings_factory: SettingsFactory, sessionmaker: Sessionmaker
) -> None:
    await _seed(sessionmaker, OLD, keys=1, profiles=1)
    settings = settings_factory(encryption_key=f"{KEY_B},{KEY_A}")
    report = await asyncio.to_thread(rotate_encryption_command, settings, generate=False)
    assert report.re_encrypted == 4
    await _assert_all_under(sessionmaker, ROTATED, "b")
    assert not (settings.data_dir / DEV_KEYRING_FILE).exists()


def test_command_will_not_generate_over_a_configured_key(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(encryption_key=KEY_A, environment="production", testing=False)
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEY is set"):
        rotate_encryption_command(settings, generate=True)


def test_command_outside_development_needs_a_configured_key(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(environment="production", testing=False)
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEY is missing"):
        rotate_encryption_command(settings, generate=True)
    assert not (settings.data_dir / DEV_KEYRING_FILE).exists()
