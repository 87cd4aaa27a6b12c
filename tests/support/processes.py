"""`policysync emulator` in a real process: bounded in time, always killed, output kept.

Both output streams are read by threads from the start, so that nothing is lost when the
process is killed and a full pipe never blocks it.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

STARTUP_TIMEOUT = 20.0
EXIT_TIMEOUT = 10.0
URL_LINE = re.compile(r" at (http://127\.0\.0\.1:(\d+)/)$")


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "policysync", "emulator", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without Stytch or ZenML Pro credentials or debugging switches,
    plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STYTCH_", "ZENML_PRO_")) and k != "POLICYSYNC_DEBUG"
    }
    env.update(extra)
    return env


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command expected to exit by itself (an error, --dump)."""
    return subprocess.run(
        command(*args),
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=30,
    )


class Running:
    """A started emulator: its URL, and its whole output once it has stopped."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(proc.stdout, self._stdout, True)),
            threading.Thread(target=self._read, args=(proc.stderr, self._stderr, False)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()
        self.first_line = self._first_line()
        match = URL_LINE.search(self.first_line)
        assert match, f"the first line names no loopback URL: {self.first_line!r}"
        self.url, self.port = match[1], int(match[2])

    def _read(self, stream: IO[str] | None, into: list[str], signal_lines: bool) -> None:
        assert stream is not None
        for line in stream:
            into.append(line)
            if signal_lines:
                self._lines.put(line)
        if signal_lines:
            self._lines.put(None)

    def _first_line(self) -> str:
        try:
            line = self._lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"no output within {STARTUP_TIMEOUT} s") from None
        if line is None:
            self.stop()
            raise AssertionError(f"the emulator exited before serving: {self.stderr}")
        return line.rstrip("\n")

    def kill(self) -> int:
        """SIGKILL: no clean shutdown of any kind."""
        if self.proc.poll() is None:
            self.proc.kill()
        return self.stop()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait(timeout=EXIT_TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=EXIT_TIMEOUT)
        return code

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)


@contextmanager
def emulator_process(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Iterator[Running]:
    """`policysync emulator --port 0 ARGS` until the block ends; killed in any case."""
    proc = subprocess.Popen(
        command("--host", "127.0.0.1", "--port", "0", *args),
        cwd=cwd,
        env=clean_env() if env is None else env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running: Running | None = None
    try:
        running = Running(proc)
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=EXIT_TIMEOUT)
        if running is not None:
            running.stop()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def wait_for(
    ready: Callable[[], bool], proc: subprocess.Popen[str], seconds: float, what: str
) -> None:
    """Until `ready()`, while `proc` runs: a failure naming `what` after `seconds`, or
    with the output of `proc` if it ends first."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        time.sleep(0.005)


@contextmanager
def started(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`argv` running, its output piped, until the block ends; killed if it still runs."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=EXIT_TIMEOUT)
