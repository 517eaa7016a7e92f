"""Run ``csms`` commands as real processes in tests, and always clean them up."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

# the installed console script, as a user runs it
CSMS = [str(Path(sys.executable).with_name("csms"))]


def csms_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_csms(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run ``csms ARGS`` to completion and return its result (stdout, stderr, returncode)."""
    return subprocess.run(
        [*CSMS, *args],
        env=csms_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class CsmsProcess:
    """A long-running ``csms ARGS`` process with its output in a file; a context manager.

    On exit it is stopped with SIGTERM (then SIGKILL) so no test leaves a process behind.
    """

    def __init__(self, *args: str, env: Mapping[str, str] | None = None):
        self.args = args
        self.env = csms_env(env)
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="csms-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self.process: subprocess.Popen[bytes] | None = None
        self.status_port = 0  # known once the subclass read it from the output

    def start(self) -> CsmsProcess:
        self.process = subprocess.Popen(
            [*CSMS, *self.args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return self

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """Wait until the output matches ``pattern``; fail with the output if it does not."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            match = regex.search(self.output)
            if match:
                return match
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"csms {' '.join(self.args)} did not print /{pattern}/ "
            f"(exit status {self.returncode()}); output:\n{self.output}"
        )

    def status(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.status_port}{path}", timeout=5
            ) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The sum of the samples of ``name`` on /metrics whose labels include ``labels``."""
        _, text = self.status("/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#") or not line:
                continue
            sample, _, value = line.rpartition(" ")
            metric, _, label_text = sample.partition("{")
            if metric != name:
                continue
            present = dict(item.split("=", 1) for item in label_text.rstrip("}").split(",") if item)
            if all(present.get(k) == f'"{v}"' for k, v in (labels or {}).items()):
                total += float(value)
        return total

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 20) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 20) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> CsmsProcess:
        try:
            return self.start()
        except BaseException:  # __exit__ is not called when __enter__ fails: clean up here
            self.__exit__(None, None, None)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def children(pid: int) -> list[int]:
    """Direct child process ids of ``pid`` (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("PPid:") and int(line.split()[1]) == pid:
                    found.append(int(status.parent.name))
                    break
    return found


def wait_until(predicate: object, timeout: float = 10, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(interval)
    return False


__all__ = [
    "CSMS",
    "CsmsProcess",
    "children",
    "csms_env",
    "pid_alive",
    "run_csms",
    "signal",
    "wait_until",
]
