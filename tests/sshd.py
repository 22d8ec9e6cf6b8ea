"""A real OpenSSH ``sshd`` on loopback, with host and client keys of its own.

Plain helper code, no fixtures: ``tests/ssh_servers.py`` wraps :func:`running_sshd` in fixtures.
Each server lives in a temporary directory (config, host key, client keys, authorized_keys, pid
file) and runs ``sshd -D -e`` so that its log arrives on our pipe. Password authentication without
PAM checks ``/etc/shadow``, so a dedicated system user is created once (this needs root, as CI has).
Its password is random, made once per machine and kept in a file only root can read
(:data:`PASSWORD_FILE`), never in this repository: the user outlives the run, and a published
password would let anyone in through the machine's own sshd.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SSHD = Path("/usr/sbin/sshd")
# sshd refuses to start without its privilege separation directory.
PRIVSEP_DIR = Path("/run/sshd")
TEST_USER = "devpocket-sshtest"
# One password per machine rather than per run: concurrent test runs on one machine share the
# system user, and a per-run password would break the other run's logins.
PASSWORD_FILE = Path("/var/lib/devpocket-sshtest/password")
CLIENT_KEY_PASSPHRASE = "passphrase-c0rrect-horse"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

_user_ready = threading.Lock()
_user_password: str | None = None


def sshd_unavailable_reason() -> str | None:
    """Why a real sshd cannot run on this machine, or None when it can."""
    if not SSHD.is_file():
        return (
            f"OpenSSH server is not installed ({SSHD} is missing; apt-get install openssh-server)"
        )
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed (apt-get install openssh-client)"
    if os.geteuid() != 0:
        return f"running sshd for tests needs root (to create the user {TEST_USER!r})"
    return None


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def _machine_password() -> str:
    """The test user's password from :data:`PASSWORD_FILE`, made there by the first run to ask."""
    directory = PASSWORD_FILE.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # mkdir's mode passes through the umask and leaves an existing one
    if not PASSWORD_FILE.exists():
        # Written in full under a name of its own, then linked into place: link (unlike rename)
        # fails when a concurrent run got there first, and then both use that run's password.
        descriptor, draft = tempfile.mkstemp(dir=directory, prefix=".password-")  # mode 0600
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(24) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.link(draft, PASSWORD_FILE)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    PASSWORD_FILE.chmod(0o600)
    password = PASSWORD_FILE.read_text().strip()
    if not password:
        raise RuntimeError(f"{PASSWORD_FILE} is empty; remove it to have a new password made")
    return password


def _ensure_test_user() -> str:
    """Create the test user if needed, give it the machine's password and return that."""
    global _user_password
    with _user_ready:
        if _user_password is not None:
            return _user_password
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        created = subprocess.run(
            ["useradd", "-m", "-s", "/bin/bash", TEST_USER], capture_output=True, timeout=30
        )
        # 9: the user exists already (an earlier or a concurrent run made it).
        if created.returncode not in (0, 9):
            raise RuntimeError(f"useradd failed: {created.stderr.decode(errors='replace')}")
        # bash, for the shell integration of SSH sessions (an older run made the user with sh).
        subprocess.run(["usermod", "-s", "/bin/bash", TEST_USER], timeout=30, check=True)
        password = _machine_password()
        # Set on every run's first use, not only when the file is new: the same password again
        # changes nothing for a concurrent run, and it replaces whatever the user had before (an
        # older run's fixed password), also when the run that made the file died before this.
        subprocess.run(
            ["chpasswd"], input=f"{TEST_USER}:{password}\n", text=True, timeout=30, check=True
        )
        _user_password = password
        return password


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _openssh_version() -> tuple[int, int]:
    done = subprocess.run([str(SSHD), "-V"], capture_output=True, text=True, timeout=10)
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", done.stderr + done.stdout)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def _config(
    directory: Path, port: int, *, allow_tcp_forwarding: bool, max_sessions: int | None = None
) -> str:
    lines = [
        f"ListenAddress {HOST}",
        f"Port {port}",
        f"HostKey {directory / 'host_key'}",
        f"PidFile {directory / 'sshd.pid'}",
        # %h cannot point into our directory; StrictModes would reject a key file under /tmp.
        f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitRootLogin no",
        f"AllowUsers {TEST_USER}",
        f"AllowTcpForwarding {'yes' if allow_tcp_forwarding else 'no'}",
        "X11Forwarding no",
        "UseDNS no",
        # DEBUG1 logs every "userauth-request" and "direct-tcpip" so tests can prove what
        # a client did (or did not) send.
        "LogLevel DEBUG1",
    ]
    if max_sessions is not None:
        # 0: logins succeed, every session channel (shell, exec) is refused.
        lines.append(f"MaxSessions {max_sessions}")
    if _openssh_version() >= (9, 8):
        # Repeated failed logins from loopback would otherwise lock later tests out.
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n"


class SshServer:
    """One running sshd: where it listens, how to log in, and its log so far."""

    def __init__(
        self,
        directory: Path,
        *,
        password: str,
        allow_tcp_forwarding: bool,
        max_sessions: int | None = None,
    ) -> None:
        self.directory = directory
        self.host = HOST
        self.port = _free_port()
        self.username = TEST_USER
        self.password = password
        self.client_key_passphrase = CLIENT_KEY_PASSPHRASE
        self._log: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._make_client_keys()
        self._make_host_key()
        config = _config(
            directory,
            self.port,
            allow_tcp_forwarding=allow_tcp_forwarding,
            max_sessions=max_sessions,
        )
        (directory / "sshd_config").write_text(config)

    @property
    def client_key(self) -> str:
        """The client's private key (OpenSSH format, unencrypted), authorized on this server."""
        return (self.directory / "client_key").read_text()

    @property
    def encrypted_client_key(self) -> str:
        """The same client key, encrypted with :attr:`client_key_passphrase`."""
        return (self.directory / "client_key_encrypted").read_text()

    def profile(self, **overrides: Any) -> dict[str, Any]:
        """A profile body for the API that logs in to this server with the test password."""
        return {
            "name": f"sshd-{self.port}",
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "connect_timeout": 5,
            **overrides,
        }

    @property
    def host_key_type(self) -> str:
        return (self.directory / "host_key.pub").read_text().split()[0]

    @property
    def host_key_fingerprint(self) -> str:
        """``SHA256:…`` as ``ssh-keygen -lf`` prints it."""
        return _run("ssh-keygen", "-lf", str(self.directory / "host_key.pub")).split()[1]

    def log_mark(self) -> int:
        """A position in the log; :meth:`log_since` returns what came after it."""
        return len(self._log)

    def log_since(self, mark: int) -> list[str]:
        return self._log[mark:]

    def wait_for_log(self, mark: int, needle: str, timeout: float = 5.0) -> list[str]:
        """The log after ``mark`` once a line containing ``needle`` has arrived."""
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in self._log[mark:]):
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd never logged {needle!r}: {self._log[mark:]}")
            time.sleep(0.02)
        return self._log[mark:]

    def replace_host_key(self) -> None:
        """Give the server a new host key, as a reinstalled or impersonated host would have."""
        self.stop()
        self._make_host_key()
        self.start()

    def _make_host_key(self) -> None:
        for name in ("host_key", "host_key.pub"):
            (self.directory / name).unlink(missing_ok=True)
        key = str(self.directory / "host_key")
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sshd-test-host", "-f", key)

    def _make_client_keys(self) -> None:
        plain = self.directory / "client_key"
        _run(
            "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "devpocket-test", "-f", str(plain)
        )
        encrypted = self.directory / "client_key_encrypted"
        shutil.copyfile(plain, encrypted)
        encrypted.chmod(0o600)
        _run("ssh-keygen", "-q", "-p", "-P", "", "-N", CLIENT_KEY_PASSPHRASE, "-f", str(encrypted))
        authorized = self.directory / "authorized_keys"
        shutil.copyfile(self.directory / "client_key.pub", authorized)
        # sshd reads authorized_keys as the logging-in user, not as root.
        authorized.chmod(0o644)
        self.directory.chmod(0o755)

    def start(self) -> None:
        command = [str(SSHD), "-D", "-e", "-f", str(self.directory / "sshd_config")]
        # A session of its own, so stop() can end this sshd together with its per-connection
        # children, and nothing else.
        self._process = subprocess.Popen(command, stderr=subprocess.PIPE, start_new_session=True)
        self._reader = threading.Thread(target=self._read_log, args=(self._process,), daemon=True)
        self._reader.start()
        self._wait_for_banner()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT)
        if process.stderr is not None:
            process.stderr.close()

    def _read_log(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            # list.append is atomic; readers on the test's thread only slice.
            self._log.append(raw.decode(errors="replace").rstrip())

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                if self._reader is not None:
                    self._reader.join(STOP_TIMEOUT)  # the log holds the reason
                raise RuntimeError(f"sshd exited at start: {self._log[-10:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not answer on port {self.port}: {self._log[-10:]}")


@contextmanager
def running_sshd(
    *, allow_tcp_forwarding: bool = False, max_sessions: int | None = None
) -> Iterator[SshServer]:
    """A started sshd in a directory of its own; stopped and removed on exit.

    ``max_sessions`` is sshd's ``MaxSessions`` (its default, 10, when None).
    """
    password = _ensure_test_user()
    directory = Path(tempfile.mkdtemp(prefix="devpocket-sshd-"))
    try:
        server = SshServer(
            directory,
            password=password,
            allow_tcp_forwarding=allow_tcp_forwarding,
            max_sessions=max_sessions,
        )
        try:
            server.start()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
