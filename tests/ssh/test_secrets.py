"""Vault encryption: AES-256-GCM tokens bound to their row, a keyring from ENCRYPTION_KEY."""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path

import pytest

from devpocket.settings import ConfigurationError
from devpocket.ssh.secrets import (
    DEV_KEYRING_FILE,
    Keyring,
    SecretBox,
    SecretUnreadable,
    context_for,
    generate_key_entry,
    prepend_key_to_file,
)
from tests.conftest import TEST_SECRET, IsolatedSettings

ROW = uuid.UUID("6f1c2a4e-0000-4000-8000-000000000001")
CONTEXT = context_for("ssh_profiles", ROW, "password")
KEY_A = generate_key_entry("a")
KEY_B = generate_key_entry("b")


def _material(entry: str) -> str:
    return entry.partition(":")[2]


def _encoded(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def test_round_trip_returns_the_plaintext() -> None:
    box = SecretBox.from_text(KEY_A)
    token = box.encrypt("hunter2 ✓", context=CONTEXT)
    assert token.startswith("v1.a.")
    assert "hunter2" not in token
    assert box.decrypt(token, context=CONTEXT) == "hunter2 ✓"


def test_each_encryption_uses_a_fresh_nonce() -> None:
    box = SecretBox.from_text(KEY_A)
    tokens = {box.encrypt("same", context=CONTEXT) for _ in range(20)}
    assert len(tokens) == 20
    assert len({token.split(".")[2] for token in tokens}) == 20


@pytest.mark.parametrize(
    "other",
    [
        context_for("ssh_profiles", uuid.uuid4(), "password"),
        context_for("ssh_profiles", ROW, "passphrase"),
        context_for("ssh_keys", ROW, "password"),
    ],
    ids=["other-row", "other-column", "other-table"],
)
def test_a_secret_does_not_decrypt_in_another_context(other: str) -> None:
    box = SecretBox.from_text(KEY_A)
    token = box.encrypt("hunter2", context=CONTEXT)
    with pytest.raises(SecretUnreadable):
        box.decrypt(token, context=other)


def _flip_first_character(part: str) -> str:
    # Not the last: in unpadded base64 the last character may carry bits that decoding drops,
    # so changing only those would change nothing (the test failed that way once in ~30 runs).
    return ("A" if part[0] != "A" else "B") + part[1:]


@pytest.mark.parametrize("part", [2, 3], ids=["nonce", "ciphertext"])
def test_a_tampered_token_is_refused(part: int) -> None:
    box = SecretBox.from_text(KEY_A)
    parts = box.encrypt("hunter2", context=CONTEXT).split(".")
    parts[part] = _flip_first_character(parts[part])
    with pytest.raises(SecretUnreadable):
        box.decrypt(".".join(parts), context=CONTEXT)


def test_a_relabelled_key_id_is_refused() -> None:
    box = SecretBox.from_text(f"{KEY_A},{KEY_B}")
    token = box.encrypt("hunter2", context=CONTEXT)
    with pytest.raises(SecretUnreadable):
        box.decrypt(token.replace("v1.a.", "v1.b.", 1), context=CONTEXT)


def test_an_unknown_key_id_is_refused_naming_it() -> None:
    token = SecretBox.from_text(KEY_B).encrypt("hunter2", context=CONTEXT)
    with pytest.raises(SecretUnreadable, match="'b'"):
        SecretBox.from_text(KEY_A).decrypt(token, context=CONTEXT)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "hunter2",
        "v2.a.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",
        "v1.a.AAAAAAAAAAAAAAAA",
        "v1.a.AAAAAAAAAAAAAAAA.AAAA.AAAA",
        "v1.a.not*base64.AAAAAAAAAAAAAAAAAAAAAA",
        "v1.a.AAAA.AAAAAAAAAAAAAAAAAAAAAA",
        "v1.a.AAAAAAAAAAAAAAAA.AAAA",
        "v1.a b.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_a_malformed_token_is_refused(token: str) -> None:
    box = SecretBox.from_text(KEY_A)
    with pytest.raises(SecretUnreadable):
        box.decrypt(token, context=CONTEXT)


def test_key_id_and_currency_of_a_token() -> None:
    old = SecretBox.from_text(KEY_A).encrypt("x", context=CONTEXT)
    box = SecretBox.from_text(f"{KEY_B},{KEY_A}")
    new = box.encrypt("x", context=CONTEXT)
    assert (box.key_id_of(old), box.key_id_of(new)) == ("a", "b")
    assert not box.is_current(old)
    assert box.is_current(new)
    assert box.decrypt(old, context=CONTEXT) == "x"


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        (KEY_A, ("a",)),
        (f"{KEY_B},{KEY_A}", ("b", "a")),
        (f" {KEY_B} , {KEY_A} ,", ("b", "a")),
        (f"k2026b_x-Y:{_material(KEY_A)}=", ("k2026b_x-Y",)),
        (f"{'i' * 32}:{_material(KEY_A)}", ("i" * 32,)),
    ],
    ids=["one", "two", "spaces-and-trailing-comma", "padded", "longest-id"],
)
def test_keyring_parses_entries_current_first(text: str, ids: tuple[str, ...]) -> None:
    keyring = Keyring.parse(text)
    assert keyring.ids == ids
    assert keyring.current_id == ids[0]


SECRET_MATERIAL = _material(KEY_A)
SHORT_KEY = _encoded(b"s" * 16)
LONG_KEY = _encoded(b"l" * 48)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        (" , ", "empty"),
        (SECRET_MATERIAL, "not of the form"),
        (f":{SECRET_MATERIAL}", "invalid id"),
        (f"bad.id:{SECRET_MATERIAL}", "invalid id"),
        (f"{'i' * 33}:{SECRET_MATERIAL}", "invalid id"),
        (f"a:{SECRET_MATERIAL[:-2]}+/", "not base64url"),
        (f"a:{SECRET_MATERIAL}$", "not base64url"),
        (f"a:{SHORT_KEY}", "16 bytes"),
        (f"a:{LONG_KEY}", "48 bytes"),
        (f"a:{SECRET_MATERIAL},b:{SHORT_KEY}", "entry 2"),
        (f"a:{SECRET_MATERIAL},b:{_material(KEY_B)},a:{_material(KEY_B)}", "entries 1 and 3"),
    ],
)
def test_keyring_refuses_bad_values_without_echoing_them(text: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEY") as raised:
        Keyring.parse(text)
    message = str(raised.value)
    assert reason in message
    for material in (SECRET_MATERIAL, _material(KEY_B), SHORT_KEY, LONG_KEY):
        assert material not in message
        assert material[:8] not in message


def test_keyring_and_box_reprs_hold_ids_only() -> None:
    box = SecretBox.from_text(f"{KEY_B},{KEY_A}")
    assert repr(box) == "SecretBox(Keyring(ids=('b', 'a')))"


def test_generated_entries_are_new_keys_with_dated_ids() -> None:
    first, second = generate_key_entry(), generate_key_entry()
    assert first != second
    assert re.fullmatch(r"k\d{8}[0-9a-f]{4}", first.partition(":")[0])
    assert Keyring.parse(first).current_id == first.partition(":")[0]
    assert generate_key_entry("k2026b").startswith("k2026b:")
    with pytest.raises(ValueError, match="key id"):
        generate_key_entry("no spaces")


def test_development_generates_a_keyring_once_and_keeps_it(tmp_path: Path) -> None:
    first = IsolatedSettings(data_dir=tmp_path).encryption_keyring_text()
    second = IsolatedSettings(data_dir=tmp_path).encryption_keyring_text()
    assert first == second
    assert len(Keyring.parse(first).ids) == 1
    keyring_file = tmp_path / DEV_KEYRING_FILE
    assert keyring_file.stat().st_mode & 0o777 == 0o600


def test_a_configured_key_is_used_and_no_file_is_written(tmp_path: Path) -> None:
    settings = IsolatedSettings(
        environment="production",
        jwt_secret_key=TEST_SECRET,
        encryption_key=f"{KEY_B},{KEY_A}",
        data_dir=tmp_path,
    )
    settings.check_startup()
    assert settings.encryption_keyring_text() == f"{KEY_B},{KEY_A}"
    assert not (tmp_path / DEV_KEYRING_FILE).exists()


@pytest.mark.parametrize("environment", ["production", "staging"])
@pytest.mark.parametrize("configured", [None, "", "  "])
def test_outside_development_a_missing_key_refuses_to_start(
    tmp_path: Path, environment: str, configured: str | None
) -> None:
    settings = IsolatedSettings(
        environment=environment,
        jwt_secret_key=TEST_SECRET,
        encryption_key=configured,
        data_dir=tmp_path,
    )
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEY is missing"):
        settings.check_startup()
    assert not (tmp_path / DEV_KEYRING_FILE).exists()


def test_a_malformed_configured_key_refuses_to_start(tmp_path: Path) -> None:
    settings = IsolatedSettings(
        environment="production",
        jwt_secret_key=TEST_SECRET,
        encryption_key=f"a:{SHORT_KEY}",
        data_dir=tmp_path,
    )
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEY entry 1"):
        settings.check_startup()


def test_prepending_a_key_makes_it_current_and_keeps_the_file_private(tmp_path: Path) -> None:
    path = tmp_path / DEV_KEYRING_FILE
    original = IsolatedSettings(data_dir=tmp_path).encryption_keyring_text()
    text = prepend_key_to_file(path, KEY_B)
    assert text == f"{KEY_B},{original}"
    assert IsolatedSettings(data_dir=tmp_path).encryption_keyring_text() == text
    assert path.stat().st_mode & 0o777 == 0o600
    assert [entry.name for entry in tmp_path.iterdir()] == [DEV_KEYRING_FILE]


def test_prepending_a_duplicate_id_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / DEV_KEYRING_FILE
    original = prepend_key_to_file(path, KEY_A)
    with pytest.raises(ConfigurationError, match="same id"):
        prepend_key_to_file(path, generate_key_entry("a"))
    assert path.read_text(encoding="utf-8") == original
