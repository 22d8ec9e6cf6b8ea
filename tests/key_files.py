"""Private key files rewritten byte by byte: what no key tool would write, for tests."""

from __future__ import annotations

import base64
import textwrap

from asyncssh.packet import SSHPacket, String, UInt32

OPENSSH_MAGIC = b"openssh-key-v1\0"


def armor(label: str, data: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 70))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def unarmor(text: str) -> bytes:
    return base64.b64decode("".join(text.strip().splitlines()[1:-1]))


def rewrite_openssh(text: str, *, cipher: bytes | None = None, rounds: int | None = None) -> str:
    """An OpenSSH private key with another cipher name or other bcrypt rounds in its header."""
    packet = SSHPacket(unarmor(text)[len(OPENSSH_MAGIC) :])
    old_cipher, kdf, options = packet.get_string(), packet.get_string(), packet.get_string()
    kdf_options = SSHPacket(options)
    salt, old_rounds = kdf_options.get_string(), kdf_options.get_uint32()
    options = String(salt) + UInt32(old_rounds if rounds is None else rounds)
    header = String(cipher or old_cipher) + String(kdf) + String(options)
    return armor("OPENSSH PRIVATE KEY", OPENSSH_MAGIC + header + packet.get_remaining_payload())
