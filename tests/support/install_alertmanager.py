"""Install the pinned Prometheus Alertmanager into a folder (``make`` runs this once; stdlib only).

The notification tests post alerts to a real Alertmanager, Debian's
``prometheus-alertmanager`` package. ``apt-get download`` fetches the .deb into
a scratch folder (no root needed: nothing is installed system-wide), its
SHA-256 is checked against the pin below, and ``dpkg-deb -x`` unpacks it into
the target; the binary is ``usr/bin/prometheus-alertmanager`` there. About
11 MB, a second or two.

Debian's build reads its notification templates from
``/usr/share/prometheus/alertmanager`` (its patch 02-Do_not_embed_blobs; the
upstream binary embeds them), and refuses any configuration while
``default.tmpl`` is not there. Installing into /usr/share needs root, so the
installer writes a copy of the binary, ``alertmanager`` in the target, whose
one path constant reads ``usr//share/prometheus/alertmanager`` instead (the
same length, so nothing else in the binary moves): run from the target
folder, it finds the templates the package unpacked there. The package's own
binary is kept beside it, unchanged.

    python3 tests/support/install_alertmanager.py .tools/alertmanager

Bumping :data:`VERSION` (and :data:`SHA256`) reinstalls: the Makefile's stamp
names the version.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "prometheus-alertmanager"
VERSION = "0.25.0-1+b4"  # Debian bookworm
SHA256 = "4fb9aed15cfe8e0c32408e643ab32a1e41ee87d2cc26f18aeba928b1b0b98ae7"  # the amd64 .deb
PACKAGED = Path("usr/bin/prometheus-alertmanager")
BINARY = Path("alertmanager")
"""The binary to run, with the target folder as its working directory (see above)."""
TEMPLATES = b"/usr/share/prometheus/alertmanager"
RELATIVE_TEMPLATES = b"usr//share/prometheus/alertmanager"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(
            f"install_alertmanager: {name} is needed to fetch {PACKAGE} {VERSION} "
            "(a Debian or Ubuntu system with apt and dpkg)"
        )
    return found


def install(target: Path) -> Path:
    """Fetch, check and unpack the pinned package into ``target``; the binary's path."""
    apt_get, dpkg_deb = _tool("apt-get"), _tool("dpkg-deb")
    with tempfile.TemporaryDirectory() as scratch:
        fetched = subprocess.run(
            [apt_get, "download", f"{PACKAGE}={VERSION}"],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
        debs = sorted(Path(scratch).glob(f"{PACKAGE}_*.deb"))
        if fetched.returncode != 0 or len(debs) != 1:
            raise SystemExit(
                f"install_alertmanager: apt-get download {PACKAGE}={VERSION} failed "
                f"(status {fetched.returncode}): {fetched.stderr.strip()} "
                "(run apt-get update first if the package lists are missing)"
            )
        digest = hashlib.sha256(debs[0].read_bytes()).hexdigest()
        if digest != SHA256:
            raise SystemExit(
                f"install_alertmanager: {debs[0].name} has SHA-256 {digest}, expected {SHA256}"
            )
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        subprocess.run([dpkg_deb, "-x", str(debs[0]), str(target)], check=True)
    packaged = (target / PACKAGED).read_bytes()
    if packaged.count(TEMPLATES) == 0 or len(TEMPLATES) != len(RELATIVE_TEMPLATES):
        raise SystemExit(f"install_alertmanager: {PACKAGED} does not name {TEMPLATES.decode()}")
    binary = target / BINARY
    binary.write_bytes(packaged.replace(TEMPLATES, RELATIVE_TEMPLATES))
    binary.chmod(0o755)
    version = subprocess.run(
        [str(binary), "--version"], check=True, capture_output=True, text=True
    ).stdout.splitlines()[0]
    print(f"install_alertmanager: {binary}: {version}")
    return binary


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: install_alertmanager.py TARGET_DIR")
    install(Path(sys.argv[1]))
