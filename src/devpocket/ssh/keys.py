"""SSH keys for the vault: generate, import, validate and fingerprint them (no database, no web).

Imported keys come back decrypted, re-exported in OpenSSH format: the vault encrypts them at rest
with its own key. Every error message is a fixed string, so no key material or passphrase can reach
a response or a log.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import anyio
import asyncssh
from asyncssh.asn1 import ASN1DecodeError, der_decode
from asyncssh.packet import PacketDecodeError, SSHPacket
from cryptography.hazmat.primitives.asymmetric import rsa

from devpocket.errors import InvalidInput

# Import accepts the RSA sizes servers already trust; generation offers only today's sizes.
MIN_IMPORTED_RSA_BITS = 2048
MAX_RSA_BITS = 16384
# A 16384-bit RSA key is about 12.5 KB of PEM; anything larger is not a key we would accept.
MAX_KEY_CHARS = 16 * 1024
# Decryption runs the KDF with the cost written in the key itself: cap it so that a crafted key
# cannot hold a worker thread for hours. Defaults: ssh-keygen 16 rounds, OpenSSL 2048 iterations.
MAX_BCRYPT_ROUNDS = 256
MAX_PBKDF2_ITERATIONS = 1_000_000
MAX_COMMENT_CHARS = 255

# Sizes each type can be generated with; the first is the default.
_GENERATION_SIZES: dict[str, tuple[int, ...]] = {
    "ed25519": (256,),
    "rsa": (3072, 4096),
    "ecdsa": (256, 384),
}
# SSH algorithm → (key type, bits); RSA bits come from the modulus.
_ACCEPTED_ALGORITHMS: dict[bytes, tuple[str, int]] = {
    b"ssh-ed25519": ("ed25519", 256),
    b"ssh-rsa": ("rsa", 0),
    b"ecdsa-sha2-nistp256": ("ecdsa", 256),
    b"ecdsa-sha2-nistp384": ("ecdsa", 384),
    b"ecdsa-sha2-nistp521": ("ecdsa", 521),
}
_MESSAGES: dict[str, str] = {
    "key_invalid": "This is not a private key in OpenSSH or PEM format.",
    "key_passphrase_required": "This key is encrypted: enter its passphrase.",  # nosec B105 - text
    "key_passphrase_incorrect": "The passphrase does not decrypt this key.",  # nosec B105 - text
    "key_type_unsupported": "Only Ed25519, RSA and ECDSA (NIST P-256, P-384, P-521) keys are "
    "supported.",
    "key_encryption_unsupported": "This key's encryption is not supported, or its key derivation "
    "is too costly. Re-encrypt it with ssh-keygen -p.",
    "key_comment_invalid": f"A key comment is at most {MAX_COMMENT_CHARS} characters on one line.",
}
# asyncssh reports failures as ValueError subclasses whose only distinction is the message.
_CODES_BY_ASYNCSSH_MESSAGE: tuple[tuple[str, str], ...] = (
    ("Passphrase must be specified", "key_passphrase_required"),
    ("Incorrect passphrase", "key_passphrase_incorrect"),
    ("Unable to decrypt", "key_passphrase_incorrect"),
    ("Unknown cipher", "key_encryption_unsupported"),
    ("Unknown kdf", "key_encryption_unsupported"),
    # Said when the optional bcrypt package is missing: the deployment's fault, not the key's.
    ("OpenSSH private key encryption requires", "key_encryption_unsupported"),
    ("Unknown PEM key type", "key_type_unsupported"),
    ("Unknown PKCS#8 algorithm", "key_type_unsupported"),
    ("Unknown OpenSSH private key algorithm", "key_type_unsupported"),
)
_PRIVATE_KEY_HEADER = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_OPENSSH_MAGIC = b"openssh-key-v1\0"


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    private_key: str  # OpenSSH PEM, unencrypted: the vault encrypts it
    public_key: str  # one OpenSSH line: "ssh-ed25519 AAAA… comment"
    key_type: str  # "ed25519" | "rsa" | "ecdsa"
    bits: int
    fingerprint: str  # "SHA256:…", as ssh-keygen -l prints it
    comment: str | None


@dataclass(frozen=True, slots=True)
class KeyValidation:
    is_valid: bool
    key_type: str | None = None
    key_size: int | None = None
    fingerprint: str | None = None
    error: str | None = None  # a message for people
    code: str | None = None


_TOO_LONG = "This is too long to be a private key."
_PUBLIC_NOT_PRIVATE = "This is a public key: paste the private key instead."


def _error(code: str, message: str | None = None) -> InvalidInput:
    return InvalidInput(message or _MESSAGES[code], code=code)


def looks_like_private_key(text: str) -> bool:
    """Whether ``text`` starts with a PEM or OpenSSH private key header (is not base64-wrapped)."""
    return _PRIVATE_KEY_HEADER.match(text.lstrip()) is not None


def generate_key(key_type: str, bits: int | None = None, comment: str | None = None) -> KeyMaterial:
    """Generate a key; CPU-heavy for RSA, so the event loop calls ``generate_key_async``."""
    normalized_type = key_type.lower()
    sizes = _GENERATION_SIZES.get(normalized_type)
    if sizes is None:
        raise InvalidInput(
            "A key can be generated as ed25519, rsa or ecdsa.", code="key_type_unsupported"
        )
    size = sizes[0] if bits is None else bits
    if size not in sizes:
        allowed = " or ".join(str(allowed_size) for allowed_size in sizes)
        raise InvalidInput(
            f"A {normalized_type} key can be generated with {allowed} bits.",
            code="key_size_unsupported",
        )
    checked_comment = _checked_comment(comment)
    if normalized_type == "rsa":
        key = asyncssh.generate_private_key("ssh-rsa", checked_comment, key_size=size)
    elif normalized_type == "ecdsa":
        key = asyncssh.generate_private_key(f"ecdsa-sha2-nistp{size}", checked_comment)
    else:
        key = asyncssh.generate_private_key("ssh-ed25519", checked_comment)
    return _material(key, normalized_type, size)


async def generate_key_async(
    key_type: str, bits: int | None = None, comment: str | None = None
) -> KeyMaterial:
    return await anyio.to_thread.run_sync(generate_key, key_type, bits, comment)


def import_key(private_key: str, passphrase: str | None, comment: str | None = None) -> KeyMaterial:
    """Decrypt and check a private key; ``comment`` replaces the key's own comment if given.

    An empty passphrase counts as none: OpenSSH cannot encrypt a key with an empty one.
    """
    checked_comment = _checked_comment(comment)
    key = _load_private_key(private_key, passphrase or None)
    key_type, bits = _describe(key)
    if key_type == "rsa" and not MIN_IMPORTED_RSA_BITS <= bits <= MAX_RSA_BITS:
        raise InvalidInput(
            f"RSA keys must have {MIN_IMPORTED_RSA_BITS} to {MAX_RSA_BITS} bits; "
            f"this one has {bits}.",
            code="key_size_unsupported",
            details={"key_type": key_type, "key_size": bits},
        )
    key.set_comment(checked_comment if checked_comment is not None else _own_comment(key))
    return _material(key, key_type, bits)


async def import_key_async(
    private_key: str, passphrase: str | None, comment: str | None = None
) -> KeyMaterial:
    """``import_key`` in a worker thread: decrypting an OpenSSH key runs bcrypt (~0.2 s)."""
    return await anyio.to_thread.run_sync(import_key, private_key, passphrase, comment)


def validate_key(private_key: str, passphrase: str | None) -> KeyValidation:
    """Report what ``import_key`` thinks of a key; bad input is reported, never raised."""
    try:
        material = import_key(private_key, passphrase)
    except InvalidInput as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        return KeyValidation(
            is_valid=False,
            key_type=details.get("key_type"),
            key_size=details.get("key_size"),
            error=exc.message,
            code=exc.code,
        )
    return KeyValidation(
        is_valid=True,
        key_type=material.key_type,
        key_size=material.bits,
        fingerprint=material.fingerprint,
    )


async def validate_key_async(private_key: str, passphrase: str | None) -> KeyValidation:
    return await anyio.to_thread.run_sync(validate_key, private_key, passphrase)


def fingerprint_of_public_key(public_key_line: str) -> str:
    """The SHA256 fingerprint of an OpenSSH public key line, as ``ssh-keygen -lf`` prints it."""
    try:
        key = asyncssh.import_public_key(public_key_line)
    except ValueError:
        raise InvalidInput("This is not an OpenSSH public key.", code="key_invalid") from None
    return key.get_fingerprint("sha256")


def fingerprint_of_host_key(key: asyncssh.SSHKey) -> str:
    return key.get_fingerprint("sha256")


def _checked_comment(comment: str | None) -> str | None:
    # A newline in a comment would let one public key line become two in authorized_keys.
    if not comment:
        return None
    if len(comment) > MAX_COMMENT_CHARS or not comment.isprintable():
        raise _error("key_comment_invalid")
    return comment


def _own_comment(key: asyncssh.SSHKey) -> str | None:
    try:
        own = key.get_comment()
    except UnicodeDecodeError:
        return None
    if not own or len(own) > MAX_COMMENT_CHARS or not own.isprintable():
        return None
    return own


def _material(key: asyncssh.SSHKey, key_type: str, bits: int) -> KeyMaterial:
    return KeyMaterial(
        private_key=key.export_private_key("openssh").decode("ascii"),
        public_key=key.export_public_key("openssh").decode("utf-8").strip(),
        key_type=key_type,
        bits=bits,
        fingerprint=key.get_fingerprint("sha256"),
        comment=key.get_comment(),
    )


def _describe(key: asyncssh.SSHKey) -> tuple[str, int]:
    accepted = _ACCEPTED_ALGORITHMS.get(key.algorithm)
    if accepted is None:
        raise _error("key_type_unsupported")
    key_type, bits = accepted
    if key_type == "rsa":
        modulus = key.pyca_key
        if not isinstance(modulus, rsa.RSAPrivateKey):
            raise _error("key_invalid")
        bits = modulus.key_size
    return key_type, bits


def _load_private_key(text: str, passphrase: str | None) -> asyncssh.SSHKey:
    if len(text) > MAX_KEY_CHARS:
        raise _error("key_invalid", _TOO_LONG)
    if not looks_like_private_key(text):
        if _is_public_key(text):
            raise _error("key_type_unsupported", _PUBLIC_NOT_PRIVATE)
        raise _error("key_invalid")
    _check_kdf_cost(text)
    try:
        return asyncssh.import_private_key(text, passphrase)
    # asyncssh's own text is not ours to show: it may quote parts of the input.
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        raise _classify(str(exc), text, passphrase) from None
    except (ValueError, RecursionError):
        # cryptography's consistency checks, undecodable text inside the DER (UnicodeDecodeError);
        # RecursionError: deeply nested DER.
        raise _error(
            "key_passphrase_incorrect" if _decrypted_wrongly(text, passphrase) else "key_invalid"
        ) from None


def _classify(message: str, text: str, passphrase: str | None) -> InvalidInput:
    for prefix, code in _CODES_BY_ASYNCSSH_MESSAGE:
        if message.startswith(prefix):
            return _error(code)
    if _decrypted_wrongly(text, passphrase):
        return _error("key_passphrase_incorrect")
    return _error("key_invalid")


def _decrypted_wrongly(text: str, passphrase: str | None) -> bool:
    """A wrong passphrase on legacy PEM passes the padding check about once in 256 tries and
    then fails as undecodable DER (of any kind: a bad structure, bad text in it); on an encrypted
    key that still means the passphrase is wrong. (PKCS#8 needs no such rule: asyncssh reports
    any failure after decryption as "Unable to".)"""
    return passphrase is not None and "Proc-Type: 4,ENCRYPTED" in text


def _is_public_key(text: str) -> bool:
    try:
        asyncssh.import_public_key(text)
    except (ValueError, RecursionError):
        return False
    return True


def _check_kdf_cost(text: str) -> None:
    if kdf_too_costly(text):
        raise _error("key_encryption_unsupported")


def kdf_too_costly(text: str) -> bool:
    """Whether decrypting the key would take more key-derivation work than the server allows.

    Checked before every decryption (importing, validating, connecting): the rounds are the key
    owner's choice, and billions of them would hold a worker thread for years.
    """
    openssh = _pem_body(text, "OPENSSH PRIVATE KEY")
    if openssh is not None and _bcrypt_rounds(openssh) > MAX_BCRYPT_ROUNDS:
        return True
    pkcs8 = _pem_body(text, "ENCRYPTED PRIVATE KEY")
    return pkcs8 is not None and _largest_integer(pkcs8) > MAX_PBKDF2_ITERATIONS


def _pem_body(text: str, label: str) -> bytes | None:
    match = re.search(f"-----BEGIN {label}-----(.*?)-----END {label}-----", text, re.DOTALL)
    if match is None:
        return None
    try:
        return base64.b64decode("".join(match.group(1).split()), validate=True)
    except binascii.Error:
        return None


def _bcrypt_rounds(data: bytes) -> int:
    """The bcrypt rounds of an OpenSSH private key, 0 if it has none (asyncssh judges the rest)."""
    if not data.startswith(_OPENSSH_MAGIC):
        return 0
    packet = SSHPacket(data[len(_OPENSSH_MAGIC) :])
    try:
        packet.get_string()  # cipher name
        kdf_name = packet.get_string()
        kdf_options = SSHPacket(packet.get_string())
        if kdf_name != b"bcrypt":
            return 0
        kdf_options.get_string()  # salt
        return kdf_options.get_uint32()
    except PacketDecodeError:
        return 0


def _largest_integer(der: bytes) -> int:
    """The largest integer in a PKCS#8 EncryptedPrivateKeyInfo: the KDF iteration count.

    The salt and IV are byte strings and the key length is small, so whatever the scheme (PBES1,
    PBES2, PKCS#12), no larger integer than the iteration count sits in the structure.
    """
    try:
        decoded = der_decode(der)
    except (ASN1DecodeError, RecursionError):
        return 0
    pending: list[object] = [decoded]
    largest = 0
    while pending:
        value = pending.pop()
        if isinstance(value, tuple | list):
            pending.extend(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            largest = max(largest, value)
    return largest
