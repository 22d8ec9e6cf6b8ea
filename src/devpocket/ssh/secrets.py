"""Encryption at rest for the SSH vault: AES-256-GCM under a keyring from ENCRYPTION_KEY.

A stored secret is the token ``v1.<key id>.<nonce>.<ciphertext and tag>`` (base64url, unpadded).
Each token has a fresh 96-bit nonce, and its associated data binds it to one row and column
(``context_for``): a ciphertext copied elsewhere does not decrypt. The key id lets one keyring
hold old keys next to the current one, so keys rotate without downtime (see rotation.py).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devpocket.settings import ConfigurationError, load_or_create_secret

FORMAT_VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# The file under the data directory that holds the development keyring (never used in production).
DEV_KEYRING_FILE = "encryption_keys"

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_FORMAT_HINT = "a comma-separated list of id:base64url-32-byte-key entries, the current key first"


class SecretUnreadable(Exception):
    """A stored secret does not decrypt: other row or column, altered, unknown key, malformed."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict base64url; raises ValueError (binascii.Error is one) on anything else."""
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    unpadded = text.rstrip("=")
    return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))


def context_for(table: str, row_id: uuid.UUID, column: str) -> str:
    """The associated data that binds a secret to one field of one row.

    ``column`` is the field's name without the ``_encrypted`` suffix of its column: "password".
    """
    return f"{table}:{row_id}:{column}"


class Keyring:
    """Ordered (key id, 32-byte key) pairs: the first encrypts, every one decrypts."""

    __slots__ = ("_keys", "current_id")

    def __init__(self, entries: Sequence[tuple[str, bytes]]) -> None:
        if not entries:
            raise ValueError("a keyring needs at least one key")
        self._keys = dict(entries)
        if len(self._keys) != len(entries):
            raise ValueError("key ids in a keyring must be unique")
        if any(len(key) != KEY_BYTES for key in self._keys.values()):
            raise ValueError(f"keys must be {KEY_BYTES} bytes")
        self.current_id = entries[0][0]

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Read ENCRYPTION_KEY; errors name the entry by position, never echo its text."""
        # Empty items are skipped: a trailing comma left while editing the list is harmless.
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise ConfigurationError(f"ENCRYPTION_KEY is empty: set it to {_FORMAT_HINT}")
        entries: list[tuple[str, bytes]] = []
        seen: dict[str, int] = {}
        for position, item in enumerate(items, start=1):
            key_id, key = _parse_entry(item, position)
            if key_id in seen:
                raise ConfigurationError(
                    f"ENCRYPTION_KEY entries {seen[key_id]} and {position} have the same id"
                )
            seen[key_id] = position
            entries.append((key_id, key))
        return cls(entries)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def items(self) -> tuple[tuple[str, bytes], ...]:
        return tuple(self._keys.items())

    def __repr__(self) -> str:
        # Key material stays out of logs and tracebacks; ids are not secret.
        return f"Keyring(ids={self.ids!r})"


def _parse_entry(item: str, position: int) -> tuple[str, bytes]:
    where = f"ENCRYPTION_KEY entry {position}"
    key_id, separator, encoded = item.partition(":")
    if not separator:
        raise ConfigurationError(f"{where} is not of the form id:base64url-key ({_FORMAT_HINT})")
    if not _KEY_ID.fullmatch(key_id):
        raise ConfigurationError(f"{where} has an invalid id: use 1 to 32 of A-Z a-z 0-9 _ -")
    try:
        key = _b64decode(encoded)
    except ValueError:
        raise ConfigurationError(f"{where} has a key that is not base64url") from None
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"{where} has a key of {len(key)} bytes; AES-256 needs {KEY_BYTES}"
        )
    return key_id, key


def generate_key_entry(key_id: str | None = None) -> str:
    """A new keyring entry ``id:base64url-key``; the id defaults to ``k<UTC date><4 hex>``."""
    if key_id is None:
        key_id = f"k{datetime.now(UTC):%Y%m%d}{secrets.token_hex(2)}"
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 1 to 32 of A-Z a-z 0-9 _ -")
    return f"{key_id}:{_b64encode(secrets.token_bytes(KEY_BYTES))}"


class SecretBox:
    """Encrypts under the keyring's current key; decrypts under any key it holds."""

    __slots__ = ("_ciphers", "keyring")

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.items()}

    @classmethod
    def from_text(cls, text: str) -> SecretBox:
        return cls(Keyring.parse(text))

    def encrypt(self, plaintext: str, *, context: str) -> str:
        key_id = self.keyring.current_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(
            nonce, plaintext.encode("utf-8"), _associated_data(key_id, context)
        )
        return f"{FORMAT_VERSION}.{key_id}.{_b64encode(nonce)}.{_b64encode(sealed)}"

    def decrypt(self, token: str, *, context: str) -> str:
        key_id, nonce, sealed = _split(token)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SecretUnreadable(f"the secret is under key id {key_id!r}, not in the keyring")
        try:
            plaintext = cipher.decrypt(nonce, sealed, _associated_data(key_id, context))
            return plaintext.decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise SecretUnreadable(
                "the secret does not authenticate: altered, or stored for another row or column"
            ) from None

    def key_id_of(self, token: str) -> str:
        return _split(token)[0]

    def is_current(self, token: str) -> bool:
        return self.key_id_of(token) == self.keyring.current_id

    def __repr__(self) -> str:
        return f"SecretBox({self.keyring!r})"


def _associated_data(key_id: str, context: str) -> bytes:
    # The header is authenticated too, so a token's key id cannot be swapped unnoticed.
    return f"{FORMAT_VERSION}.{key_id}.{context}".encode()


def _split(token: str) -> tuple[str, bytes, bytes]:
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != FORMAT_VERSION or not _KEY_ID.fullmatch(parts[1]):
        raise SecretUnreadable(f"the secret is not a {FORMAT_VERSION} token")
    try:
        nonce, sealed = _b64decode(parts[2]), _b64decode(parts[3])
    except ValueError:
        raise SecretUnreadable("the secret is not valid base64url") from None
    if len(nonce) != NONCE_BYTES or len(sealed) < TAG_BYTES:
        raise SecretUnreadable("the secret has a malformed nonce or ciphertext")
    return parts[1], nonce, sealed


# --- The development keyring file -------------------------------------------------------------


def load_or_create_keyring_file(path: Path) -> str:
    """Read the development keyring, creating it (mode 0600, one fresh key) on first use."""
    return load_or_create_secret(path, make=generate_key_entry)


def prepend_key_to_file(path: Path, entry: str) -> str:
    """Make ``entry`` the current key of the development keyring file; returns the new text."""
    existing = load_or_create_keyring_file(path)
    text = f"{entry},{existing}"
    Keyring.parse(text)  # refuse to write a keyring that would not load
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        # A rename: a worker reading at the same moment sees the old keyring or the new, whole.
        staging.replace(path)
    except OSError:
        staging.unlink(missing_ok=True)
        raise
    return text
