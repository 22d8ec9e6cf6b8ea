"""SSH keys: generation, import of OpenSSH and PEM forms, stable error codes, fingerprints.

Fingerprints are checked against an independent computation and against OpenSSH's ssh-keygen.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from asyncssh.asn1 import der_decode, der_encode
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from devpocket.errors import InvalidInput
from devpocket.ssh.keys import (
    MAX_BCRYPT_ROUNDS,
    MAX_KEY_CHARS,
    MAX_PBKDF2_ITERATIONS,
    KeyMaterial,
    fingerprint_of_host_key,
    fingerprint_of_public_key,
    generate_key,
    generate_key_async,
    import_key,
    import_key_async,
    looks_like_private_key,
    validate_key,
    validate_key_async,
)
from tests.key_files import OPENSSH_MAGIC, armor, rewrite_openssh, unarmor

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)

PASSPHRASE = "correct horse battery staple"

# label → (key type, requested bits, expected bits, ssh-keygen's type name)
GENERATED = {
    "ed25519": ("ed25519", None, 256, "ED25519"),
    "rsa-3072": ("rsa", None, 3072, "RSA"),
    "rsa-4096": ("rsa", 4096, 4096, "RSA"),
    "ecdsa-256": ("ecdsa", None, 256, "ECDSA"),
    "ecdsa-384": ("ecdsa", 384, 384, "ECDSA"),
}

# label → (source key, format, encrypted with PASSPHRASE)
FORMS = {
    "rsa-pkcs1": ("rsa", PrivateFormat.TraditionalOpenSSL, False),
    "rsa-pkcs1-legacy-encrypted": ("rsa", PrivateFormat.TraditionalOpenSSL, True),
    "rsa-pkcs8": ("rsa", PrivateFormat.PKCS8, False),
    "rsa-pkcs8-encrypted": ("rsa", PrivateFormat.PKCS8, True),
    "rsa-openssh-encrypted": ("rsa", PrivateFormat.OpenSSH, True),
    "ecdsa-sec1": ("ecdsa", PrivateFormat.TraditionalOpenSSL, False),
    "ecdsa-pkcs8-encrypted": ("ecdsa", PrivateFormat.PKCS8, True),
    "ed25519-pkcs8": ("ed25519", PrivateFormat.PKCS8, False),
    "ed25519-openssh": ("ed25519", PrivateFormat.OpenSSH, False),
    "ed25519-openssh-encrypted": ("ed25519", PrivateFormat.OpenSSH, True),
}
SOURCE_BITS = {"rsa": 2048, "ecdsa": 384, "ed25519": 256}

REFUSED = {
    "pkcs8-without-passphrase": "key_passphrase_required",
    "pkcs8-empty-passphrase": "key_passphrase_required",
    "legacy-pem-without-passphrase": "key_passphrase_required",
    "openssh-without-passphrase": "key_passphrase_required",
    "openssh-empty-passphrase": "key_passphrase_required",
    "pkcs8-wrong-passphrase": "key_passphrase_incorrect",
    "legacy-pem-wrong-passphrase": "key_passphrase_incorrect",
    "openssh-wrong-passphrase": "key_passphrase_incorrect",
    "garbage": "key_invalid",
    "empty": "key_invalid",
    "base64-wrapped": "key_invalid",
    "truncated": "key_invalid",
    "deeply-nested-der": "key_invalid",
    "too-long": "key_invalid",
    "openssh-bad-base64": "key_invalid",
    "openssh-wrong-magic": "key_invalid",
    "openssh-truncated-header": "key_invalid",
    "pkcs8-encrypted-garbage": "key_invalid",
    "public-openssh-line": "key_type_unsupported",
    "public-pem": "key_type_unsupported",
    "dsa-pkcs1": "key_type_unsupported",
    "dsa-pkcs8": "key_type_unsupported",
    "ed448": "key_type_unsupported",
    "ecdsa-secp256k1": "key_type_unsupported",
    "unknown-pem-label": "key_type_unsupported",
    "rsa-1024": "key_size_unsupported",
    "openssh-unknown-cipher": "key_encryption_unsupported",
    "openssh-costly-bcrypt": "key_encryption_unsupported",
    "pkcs8-costly-pbkdf2": "key_encryption_unsupported",
}


def _serialize(key: PrivateKey, form: PrivateFormat, *, encrypted: bool) -> str:
    encryption = BestAvailableEncryption(PASSPHRASE.encode()) if encrypted else NoEncryption()
    return key.private_bytes(Encoding.PEM, form, encryption).decode()


def _expected_fingerprint(key: PrivateKey) -> str:
    line = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    digest = hashlib.sha256(base64.b64decode(line.split()[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _with_pbkdf2_iterations(text: str, iterations: int) -> str:
    decoded: Any = der_decode(unarmor(text))
    (scheme, ((kdf, (salt, _, prf)), cipher)), data = decoded
    rebuilt = ((scheme, ((kdf, (salt, iterations, prf)), cipher)), data)
    return armor("ENCRYPTED PRIVATE KEY", der_encode(rebuilt))


def _deeply_nested_der(depth: int) -> bytes:
    der = b"\x02\x01\x00"
    for _ in range(depth):
        size = len(der)
        length = bytes([size]) if size < 128 else b"\x82" + size.to_bytes(2, "big")
        der = b"\x30" + length + der
    return der


def _ssh_keygen(*args: str) -> str:
    path = shutil.which("ssh-keygen")
    if path is None:
        pytest.fail("ssh-keygen is missing: install openssh-client")
    completed = subprocess.run(
        [path, *args], check=True, capture_output=True, text=True, timeout=60
    )
    return completed.stdout


def _assert_reveals_nothing(message: str, text: str, passphrase: str | None) -> None:
    if passphrase:
        assert passphrase not in message
    for line in text.splitlines():
        if len(line.strip()) >= 8:
            assert line.strip() not in message


@pytest.fixture(scope="module")
def generated() -> dict[str, KeyMaterial]:
    """Every generated size once: RSA 4096 takes seconds."""
    return {
        label: generate_key(key_type, bits, f"{label}@devpocket")
        for label, (key_type, bits, _, _) in GENERATED.items()
    }


@pytest.fixture(scope="module")
def sources() -> dict[str, PrivateKey]:
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ecdsa": ec.generate_private_key(ec.SECP384R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


@pytest.fixture(scope="module")
def refused_inputs(sources: dict[str, PrivateKey]) -> dict[str, tuple[str, str | None]]:
    """label → (text, passphrase) for every input in REFUSED."""
    rsa_key = sources["rsa"]
    pkcs1 = _serialize(rsa_key, PrivateFormat.TraditionalOpenSSL, encrypted=False)
    legacy = _serialize(rsa_key, PrivateFormat.TraditionalOpenSSL, encrypted=True)
    pkcs8 = _serialize(rsa_key, PrivateFormat.PKCS8, encrypted=True)
    openssh = _serialize(sources["ed25519"], PrivateFormat.OpenSSH, encrypted=True)
    public = rsa_key.public_key()
    # Weak on purpose: these are the keys the import must refuse. DSA 1024 generates quickly.
    small_dsa = dsa.generate_private_key(key_size=1024)  # noqa: S505
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    return {
        "pkcs8-without-passphrase": (pkcs8, None),
        "pkcs8-empty-passphrase": (pkcs8, ""),
        "legacy-pem-without-passphrase": (legacy, None),
        "openssh-without-passphrase": (openssh, None),
        "openssh-empty-passphrase": (openssh, ""),
        "pkcs8-wrong-passphrase": (pkcs8, "wrong passphrase"),
        "legacy-pem-wrong-passphrase": (legacy, "wrong passphrase"),
        "openssh-wrong-passphrase": (openssh, "wrong passphrase"),
        "garbage": ("this is not a key at all", None),
        "empty": ("", None),
        "base64-wrapped": (base64.b64encode(pkcs1.encode()).decode(), None),
        "truncated": ("\n".join(pkcs1.splitlines()[:4] + pkcs1.splitlines()[-1:]), None),
        "deeply-nested-der": (armor("PRIVATE KEY", _deeply_nested_der(3000)), None),
        "too-long": (pkcs1 + "A" * MAX_KEY_CHARS, None),
        "openssh-bad-base64": (openssh.replace("b3Blbn", "!!!!!!", 1), PASSPHRASE),
        "openssh-wrong-magic": (armor("OPENSSH PRIVATE KEY", b"not-openssh"), PASSPHRASE),
        "openssh-truncated-header": (
            armor("OPENSSH PRIVATE KEY", OPENSSH_MAGIC + b"\0\0"),
            PASSPHRASE,
        ),
        "pkcs8-encrypted-garbage": (armor("ENCRYPTED PRIVATE KEY", b"\x30\x03ab"), PASSPHRASE),
        "public-openssh-line": (
            public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode(),
            None,
        ),
        "public-pem": (
            public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode(),
            None,
        ),
        "dsa-pkcs1": (
            _serialize(small_dsa, PrivateFormat.TraditionalOpenSSL, encrypted=False),
            None,
        ),
        "dsa-pkcs8": (_serialize(small_dsa, PrivateFormat.PKCS8, encrypted=False), None),
        "ed448": (
            _serialize(ed448.Ed448PrivateKey.generate(), PrivateFormat.PKCS8, encrypted=False),
            None,
        ),
        "ecdsa-secp256k1": (
            _serialize(
                ec.generate_private_key(ec.SECP256K1()),
                PrivateFormat.TraditionalOpenSSL,
                encrypted=False,
            ),
            None,
        ),
        "unknown-pem-label": (pkcs1.replace("RSA PRIVATE KEY", "FOO PRIVATE KEY"), None),
        "rsa-1024": (_serialize(small_rsa, PrivateFormat.OpenSSH, encrypted=False), None),
        "openssh-unknown-cipher": (rewrite_openssh(openssh, cipher=b"rot13-cbc"), PASSPHRASE),
        "openssh-costly-bcrypt": (
            rewrite_openssh(openssh, rounds=MAX_BCRYPT_ROUNDS + 1),
            PASSPHRASE,
        ),
        "pkcs8-costly-pbkdf2": (
            _with_pbkdf2_iterations(pkcs8, MAX_PBKDF2_ITERATIONS + 1),
            PASSPHRASE,
        ),
    }


@pytest.mark.parametrize("label", GENERATED)
def test_generated_key_has_requested_shape(label: str, generated: dict[str, KeyMaterial]) -> None:
    key_type, _, bits, _ = GENERATED[label]
    material = generated[label]
    assert (material.key_type, material.bits) == (key_type, bits)
    assert material.comment == f"{label}@devpocket"
    assert material.public_key.endswith(f" {label}@devpocket")
    assert "\n" not in material.public_key
    assert material.private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    digest = hashlib.sha256(base64.b64decode(material.public_key.split()[1])).digest()
    assert material.fingerprint == "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@pytest.mark.parametrize("label", GENERATED)
def test_generated_key_imports_back_unchanged(
    label: str, generated: dict[str, KeyMaterial]
) -> None:
    material = generated[label]
    imported = import_key(material.private_key, None)
    assert imported.fingerprint == material.fingerprint
    assert imported.public_key == material.public_key
    assert (imported.key_type, imported.bits, imported.comment) == (
        material.key_type,
        material.bits,
        material.comment,
    )


@pytest.mark.parametrize("label", GENERATED)
def test_generated_key_agrees_with_ssh_keygen(
    label: str, generated: dict[str, KeyMaterial], tmp_path: Path
) -> None:
    material = generated[label]
    public_file = tmp_path / "key.pub"
    public_file.write_text(material.public_key + "\n")
    _, _, bits, keygen_type = GENERATED[label]
    listed = _ssh_keygen("-l", "-f", str(public_file)).strip()
    assert listed == f"{bits} {material.fingerprint} {label}@devpocket ({keygen_type})"
    assert fingerprint_of_public_key(material.public_key) == material.fingerprint
    # ssh-keygen reads the exported private key and derives the same public key from it.
    private_file = tmp_path / "key"
    private_file.write_text(material.private_key)
    private_file.chmod(0o600)
    derived = _ssh_keygen("-y", "-f", str(private_file)).split()
    assert derived[:2] == material.public_key.split()[:2]


@pytest.mark.parametrize(
    ("key_type", "bits", "code"),
    [
        ("dsa", None, "key_type_unsupported"),
        ("ed448", None, "key_type_unsupported"),
        ("rsa", 1024, "key_size_unsupported"),
        ("rsa", 2048, "key_size_unsupported"),
        ("rsa", 8192, "key_size_unsupported"),
        ("ecdsa", 521, "key_size_unsupported"),
        ("ed25519", 448, "key_size_unsupported"),
    ],
)
def test_generate_key_refuses_unsupported_choices(
    key_type: str, bits: int | None, code: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        generate_key(key_type, bits, None)
    assert raised.value.code == code


def test_generate_key_accepts_type_in_any_case_and_no_comment() -> None:
    material = generate_key("ED25519", None, None)
    assert (material.key_type, material.comment) == ("ed25519", None)
    assert len(material.public_key.split()) == 2


@pytest.mark.parametrize("comment", ["two\nlines", "tab\there", "x" * 256])
def test_comment_that_could_break_a_key_line_is_refused(
    comment: str, generated: dict[str, KeyMaterial]
) -> None:
    with pytest.raises(InvalidInput) as raised:
        generate_key("ed25519", None, comment)
    assert raised.value.code == "key_comment_invalid"
    with pytest.raises(InvalidInput) as raised:
        import_key(generated["ed25519"].private_key, None, comment)
    assert raised.value.code == "key_comment_invalid"


async def test_async_variants_run_the_same_work() -> None:
    generated = await generate_key_async("ecdsa", 384, "async")
    assert (generated.key_type, generated.bits, generated.comment) == ("ecdsa", 384, "async")
    imported = await import_key_async(generated.private_key, None)
    assert imported.fingerprint == generated.fingerprint
    validation = await validate_key_async(generated.private_key, None)
    assert (validation.is_valid, validation.fingerprint) == (True, generated.fingerprint)


@pytest.mark.parametrize("label", FORMS)
def test_import_accepts_form(label: str, sources: dict[str, PrivateKey]) -> None:
    source, form, encrypted = FORMS[label]
    text = _serialize(sources[source], form, encrypted=encrypted)
    material = import_key(text, PASSPHRASE if encrypted else None)
    assert material.fingerprint == _expected_fingerprint(sources[source])
    assert (material.key_type, material.bits) == (source, SOURCE_BITS[source])
    assert material.comment is None
    # The vault receives the key decrypted, in OpenSSH format.
    assert material.private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert import_key(material.private_key, None).fingerprint == material.fingerprint


@pytest.mark.parametrize("label", FORMS)
def test_validate_key_reports_accepted_form(label: str, sources: dict[str, PrivateKey]) -> None:
    source, form, encrypted = FORMS[label]
    text = _serialize(sources[source], form, encrypted=encrypted)
    validation = validate_key(text, PASSPHRASE if encrypted else None)
    assert validation.is_valid
    assert (validation.key_type, validation.key_size) == (source, SOURCE_BITS[source])
    assert validation.fingerprint == _expected_fingerprint(sources[source])
    assert (validation.error, validation.code) == (None, None)


def test_import_reads_ssh_keygen_output_and_keeps_its_comment(tmp_path: Path) -> None:
    key_file = tmp_path / "id_ed25519"
    _ssh_keygen("-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "alice@laptop", "-f", str(key_file))
    listed = _ssh_keygen("-l", "-f", str(key_file.with_suffix(".pub"))).split()
    material = import_key(key_file.read_text(), PASSPHRASE)
    assert material.fingerprint == listed[1]
    assert material.comment == "alice@laptop"
    assert material.public_key == key_file.with_suffix(".pub").read_text().strip()
    renamed = import_key(key_file.read_text(), PASSPHRASE, "vault")
    assert renamed.comment == "vault"
    assert renamed.public_key.endswith(" vault")


@pytest.mark.parametrize("own_comment", [b"\xff\xfe", b"two\nlines", b""])
def test_import_drops_own_comment_that_is_not_one_printable_line(own_comment: bytes) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519", own_comment)
    text = key.export_private_key("openssh").decode()
    material = import_key(text, None)
    assert material.comment is None
    assert len(material.public_key.split()) == 2


@pytest.mark.parametrize(("label", "code"), REFUSED.items())
def test_import_refuses_with_stable_code(
    label: str, code: str, refused_inputs: dict[str, tuple[str, str | None]]
) -> None:
    text, passphrase = refused_inputs[label]
    with pytest.raises(InvalidInput) as raised:
        import_key(text, passphrase)
    assert raised.value.code == code
    _assert_reveals_nothing(raised.value.message, text, passphrase)


@pytest.mark.parametrize(("label", "code"), REFUSED.items())
def test_validate_key_reports_refusal_without_raising(
    label: str, code: str, refused_inputs: dict[str, tuple[str, str | None]]
) -> None:
    text, passphrase = refused_inputs[label]
    validation = validate_key(text, passphrase)
    assert not validation.is_valid
    assert validation.code == code
    assert validation.error
    assert validation.fingerprint is None
    _assert_reveals_nothing(validation.error, text, passphrase)


def test_validate_key_names_type_and_size_of_a_small_rsa_key(
    refused_inputs: dict[str, tuple[str, str | None]],
) -> None:
    validation = validate_key(*refused_inputs["rsa-1024"])
    assert (validation.key_type, validation.key_size) == ("rsa", 1024)


def test_legacy_pem_wrong_passphrase_that_passes_padding_is_incorrect(
    sources: dict[str, PrivateKey],
) -> None:
    """About one wrong passphrase in 256 decrypts to valid padding and fails later, as bad DER:
    asyncssh's KeyImportError, or a ValueError from decoding what it found (bad UTF-8 in it)."""
    text = _serialize(sources["rsa"], PrivateFormat.TraditionalOpenSSL, encrypted=True)
    for attempt in range(20_000):
        wrong = f"wrong-{attempt}"
        try:
            asyncssh.import_private_key(text, wrong)
        except asyncssh.KeyImportError as exc:
            if not str(exc).startswith("Unable to decrypt"):
                break
        except ValueError:
            break
    else:
        pytest.fail("no wrong passphrase got past the padding check")
    with pytest.raises(InvalidInput) as raised:
        import_key(text, wrong)
    assert raised.value.code == "key_passphrase_incorrect"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn", True),
        ("\n  -----BEGIN RSA PRIVATE KEY-----\nMIIE", True),
        ("-----BEGIN EC PRIVATE KEY-----", True),
        ("-----BEGIN PRIVATE KEY-----", True),
        ("-----BEGIN ENCRYPTED PRIVATE KEY-----", True),
        (base64.b64encode(b"-----BEGIN OPENSSH PRIVATE KEY-----\n").decode(), False),
        ("-----BEGIN PUBLIC KEY-----", False),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOx5FAnfsjQgqtXUWCmuE4JayYkzNw+Wu1XGhpWhHbFb", False),
        ("", False),
    ],
)
def test_looks_like_private_key_detects_the_header(text: str, expected: bool) -> None:
    assert looks_like_private_key(text) is expected


@pytest.mark.parametrize("line", ["", "ssh-ed25519", "ssh-ed25519 AAAA", "not a key"])
def test_fingerprint_of_public_key_refuses_garbage(line: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        fingerprint_of_public_key(line)
    assert raised.value.code == "key_invalid"


def test_fingerprint_of_host_key_matches_the_key_fingerprint(
    generated: dict[str, KeyMaterial],
) -> None:
    material = generated["ecdsa-256"]
    host_key = asyncssh.import_public_key(material.public_key)
    assert fingerprint_of_host_key(host_key) == material.fingerprint
