#!/usr/bin/env bash
# Idempotent setup for a fresh Debian machine: system packages when missing, a .venv with pycdi.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the embedded cluster, the workers and the tests use. The import tests build images
# (e2fsprogs, xorriso, pigz, zstd, xz-utils, tar), serve them with nginx (+ its echo module for delays) and
# docker-registry, push containerDisks with skopeo, and write htpasswd files (apache2-utils).

want=()
for pkg in qemu-utils nbdkit nginx libnginx-mod-http-echo xfsprogs e2fsprogs xorriso pigz zstd xz-utils tar curl \
           docker-registry skopeo apache2-utils; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || want+=("$pkg")
done
if [ ${#want[@]} -gt 0 ]; then
    echo "setup: installing ${want[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi


if ! command -v kubectl >/dev/null 2>&1; then
    echo "setup: kubectl is missing; installing it"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kubectl >/dev/null \
        || { echo "setup: could not install kubectl: install it and run again" >&2; exit 1; }
fi

# The virtual environment, rebuilt only when pyproject.toml changes.
PY=${PYTHON:-python3}
stamp=.venv/.pycdi-setup
digest=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "setup: installing the package and its development tools into .venv"
    # pip warns about find-links folders this machine's pip config names but lacks; keep real errors visible.
    quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
    quiet_pip .venv/bin/pip install -q --upgrade pip >/dev/null
    quiet_pip .venv/bin/pip install -q -e '.[dev]'
    echo "$digest" > "$stamp"
fi
