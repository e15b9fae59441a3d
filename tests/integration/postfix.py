"""A real Postfix on loopback, in its own directories, for the SMTP probe client's tests.

One private instance: ``config_directory``, ``queue_directory`` and ``data_directory``
under a fresh folder, one SMTP listener on ``127.0.0.1:<free port>`` and no other TCP
listener (every other service in master.cf is a UNIX socket inside that queue directory),
so it neither clashes with another instance nor needs the Debian package's own service.

- It is ``mail.postfix.test`` (banner and EHLO), offers STARTTLS with a certificate from
  the lab CA, accepts exactly one recipient (:data:`ACCEPTED`) of ``postfix.test`` and
  answers ``550 5.1.1`` for any other; relaying is refused to everyone.
- It never delivers or relays: the one mailbox domain's transport is ``discard``, every
  other transport ``error``, no delivery agent is in master.cf, and the client under test
  never sends DATA anyway. It asks no resolver about anything (no client name lookup).
- The master daemon runs in the foreground under pytest (``master -s``), logging to
  stdout (``maillog_file = /dev/stdout``, written by postlogd), which goes to a file that
  a start-up failure quotes. Stopping it: SIGTERM (the master then stops its children),
  bounded wait, then SIGKILL to its process group.

Postfix daemons drop root for the ``postfix`` user and open ``data_directory`` by its
absolute path, so the folder must be traversable by that user: pytest's own temporary
folders are private to root (0700), hence a folder of our own under the system's
temporary directory, removed at the end (kept, and named, when start-up fails).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailtrace.lab.ca import LabCA

from .conftest import LOOPBACK, START_ATTEMPTS, STARTUP_DEADLINE_S, find_binary, free_port

HOSTNAME = "mail.postfix.test"
DOMAIN = "postfix.test"
ACCEPTED = ("alice@postfix.test",)  # the only recipients it takes; any other gets 550 5.1.1
MAIL_OWNER = "postfix"  # the unprivileged user the Debian package creates
STOP_DEADLINE_S = 5.0
CHECK_DEADLINE_S = 30.0  # "postfix check" is a shell script: slow on a busy machine


@dataclass(frozen=True)
class PostfixServer:
    """A running Postfix: where it listens, what it trusts, what it has logged."""

    host: str
    port: int
    hostname: str
    domain: str
    accepted: tuple[str, ...]
    ca_file: Path  # the lab CA that issued its certificate: what a client should trust
    config_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_seconds: float

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def main_cf(workdir: Path, cert_file: Path, key_file: Path) -> str:
    """main.cf: everything explicit, nothing read from /etc/postfix but the package's
    built-in defaults and its meta files (postfix-files, dynamicmaps.cf)."""
    conf = workdir / "etc"
    return f"""\
compatibility_level = 3.6
config_directory = {conf}
queue_directory = {workdir / "spool"}
data_directory = {workdir / "lib"}
mail_owner = {MAIL_OWNER}
maillog_file = /dev/stdout

myhostname = {HOSTNAME}
mydomain = {DOMAIN}
myorigin = $myhostname
mydestination =
inet_interfaces = {LOOPBACK}
inet_protocols = ipv4
mynetworks = {LOOPBACK}/32
smtpd_banner = $myhostname ESMTP Postfix (mailtrace integration)
smtpd_peername_lookup = no

# One mailbox domain, one known recipient, a plain-text table (no postmap step).
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{conf / "recipients"}
smtpd_reject_unlisted_recipient = yes
unknown_virtual_mailbox_reject_code = 550
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
alias_maps =
alias_database =
local_recipient_maps =

# Deliver nothing, relay nothing, look nothing up.
virtual_transport = discard:delivers nothing
default_transport = error:delivers nothing
relay_transport = error:delivers nothing
local_transport = error:delivers nothing
relayhost =
smtp_dns_support_level = disabled
biff = no

smtpd_tls_security_level = may
smtpd_tls_chain_files = {key_file}, {cert_file}
smtpd_tls_loglevel = 1
"""


def master_cf(port: int) -> str:
    """master.cf: one TCP listener on loopback; the rest are UNIX sockets in the queue
    directory, none chrooted (the instance's files are not copied into a jail)."""
    return f"""\
{LOOPBACK}:{port} inet n - n - - smtpd
postlog   unix-dgram n - n - 1 postlogd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
proxymap  unix - - n - - proxymap
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
"""


def write_settled(path: Path, text: str) -> None:
    """Write a file Postfix reads, dated a minute back.

    Postfix will not load a table or main.cf modified within the last second (it could be
    half-written): it sleeps 300 ms and retries until the file looks settled, which costs
    well over a second per start-up for files written just now.
    """
    path.write_text(text)
    settled = time.time() - 60
    os.utime(path, (settled, settled))


def banner(port: int, timeout: float = 0.5) -> str | None:
    """The 220 greeting at ``127.0.0.1:port`` (last line), or None; then a polite QUIT."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            received = b""
            while not _reply_complete(received):
                chunk = sock.recv(4096)
                if not chunk or len(received) > 65536:
                    return None
                received += chunk
            with contextlib.suppress(OSError):
                sock.sendall(b"QUIT\r\n")
    except OSError:
        return None
    last = received.decode("ascii", "replace").strip().splitlines()[-1]
    return last if last.startswith("220 ") else None


def _reply_complete(data: bytes) -> bool:
    """A whole reply has arrived: its last line ends, and is not a ``NNN-`` continuation."""
    lines = data.split(b"\n")
    return len(lines) > 1 and lines[-2][3:4] != b"-"


def port_taken(port: int) -> bool:
    """True when something else holds ``127.0.0.1:port`` (our bind fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def _live_members(group: int) -> list[int]:
    """Pids of processes still running in process group ``group`` (zombies excluded:
    the master's children are reaped by init once the master has gone)."""
    live = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()  # state ppid pgrp ...
        if int(fields[2]) == group and fields[0] != "Z":
            live.append(int(entry.name))
    return live


def stop_master(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the master (it stops its children), bounded waits, then SIGKILL the group.

    The master makes itself a session and process-group leader, so its group id is its
    pid; the group is only ever signalled when that holds (never pytest's own group).
    """
    try:
        group: int | None = os.getpgid(process.pid)
    except ProcessLookupError:
        group = None
    if group != process.pid:
        group = None
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_DEADLINE_S)
    if group is None:
        return
    deadline = time.monotonic() + STOP_DEADLINE_S
    while _live_members(group):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            return
        time.sleep(0.02)


def _check(postfix: str, conf: Path) -> str:
    """``postfix -c DIR check``: creates the queue directories, validates the files."""
    checked = subprocess.run(
        [postfix, "-c", str(conf), "check"],
        capture_output=True,
        text=True,
        timeout=CHECK_DEADLINE_S,
        check=False,
    )
    output = checked.stdout + checked.stderr
    if checked.returncode != 0:
        pytest.fail(f"postfix -c {conf} check refused the instance:\n{output}")
    return output


class _PortTaken(Exception):
    """The master exited because its port was taken between our check and its bind."""


def _wait_for_banner(process: subprocess.Popen[bytes], port: int, log_path: Path,
                     workdir: Path, check_output: str) -> None:
    """Until the port greets with 220 (bounded); a master that died fails with its log."""
    started = time.monotonic()
    while banner(port) is None:
        if process.poll() is not None:
            if port_taken(port):
                raise _PortTaken
            pytest.fail(
                f"Postfix master exited with status {process.returncode} during start-up"
                f" (instance kept in {workdir}; Postfix logs a failure that early only to"
                f" syslog, so the log below may be empty).\npostfix check said:\n"
                f"{check_output or '(nothing)'}\nits log:\n"
                f"{log_path.read_text(errors='replace')}"
            )
        if time.monotonic() - started > STARTUP_DEADLINE_S:
            pytest.fail(
                f"Postfix on {LOOPBACK}:{port} sent no 220 banner within"
                f" {STARTUP_DEADLINE_S:.0f} s (instance kept in {workdir}); its log:\n"
                f"{log_path.read_text(errors='replace')}"
            )
        time.sleep(0.02)


@contextlib.contextmanager
def running_postfix() -> Iterator[PostfixServer]:
    """Configure, check and start a private Postfix; always stop it and remove it."""
    postfix = find_binary("postfix")
    master = Path("/usr/lib/postfix/sbin/master")
    if postfix is None or not master.exists():
        pytest.skip("postfix not installed (Debian package postfix)")
    if os.geteuid() != 0:
        pytest.skip("Postfix's master daemon must be started as root")
    try:
        pwd.getpwnam(MAIL_OWNER)
    except KeyError:
        pytest.fail(f"postfix is installed but its user {MAIL_OWNER!r} does not exist")
    workdir = Path(tempfile.mkdtemp(prefix="mailtrace-postfix-"))
    workdir.chmod(0o755)  # the postfix user must reach data_directory by its path
    ca = LabCA()
    kept = False
    try:
        issued = ca.issue(HOSTNAME)
        conf = workdir / "etc"
        conf.mkdir()
        cert_file, key_file = conf / "cert.pem", conf / "key.pem"
        shutil.copyfile(issued.cert_file, cert_file)  # the instance stays whole if kept
        shutil.copyfile(issued.key_file, key_file)
        key_file.chmod(0o600)
        (workdir / "spool").mkdir()
        (workdir / "lib").mkdir()
        shutil.chown(workdir / "lib", user=MAIL_OWNER)
        write_settled(conf / "recipients", "".join(f"{r} {r}\n" for r in ACCEPTED))
        write_settled(conf / "main.cf", main_cf(workdir, cert_file, key_file))
        log_path = workdir / "maillog"
        started = time.monotonic()
        check_output = ""
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            write_settled(conf / "master.cf", master_cf(port))
            if attempt == 1:
                check_output = _check(postfix, conf)
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    [str(master), "-c", str(conf), "-s"],
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                _wait_for_banner(process, port, log_path, workdir, check_output)
            except _PortTaken:
                stop_master(process)
                if attempt == START_ATTEMPTS:
                    kept = True
                    pytest.fail(f"Postfix: port taken on each of {START_ATTEMPTS} attempts")
                continue
            except BaseException:
                kept = True
                stop_master(process)
                raise
            took = time.monotonic() - started
            try:
                yield PostfixServer(LOOPBACK, port, HOSTNAME, DOMAIN, ACCEPTED, ca.ca_file,
                                    conf, process, log_path, took)
            finally:
                stop_master(process)
            return
    finally:
        ca.close()
        if not kept:
            shutil.rmtree(workdir, ignore_errors=True)
