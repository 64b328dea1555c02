#!/usr/bin/env bash
# A Python base image built from Debian packages, for machines that reach no image registry (this one,
# CI): bookworm minbase + python3/venv/pip + CA certificates, via mmdebstrap and `docker import`.
# It carries this machine's pip set-up so pip inside a build reaches the same package registry:
# the CA bundle pip is configured with (PIP_CERT / `pip config list`) and the wheels of its local
# find-links folder (torch's CPU wheel lives there; PyPI's torch is the multi-GB CUDA build).
# Usage: docker/build-base.sh [IMAGE]   (default twinsft-base:bookworm; skipped when it exists,
# TWINSFT_REBUILD_BASE=1 rebuilds). Needs root, docker and mmdebstrap.
set -euo pipefail
image=${1:-twinsft-base:bookworm}
if [ "${TWINSFT_REBUILD_BASE:-0}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image exists"; exit 0
fi
pip_setting() {  # pip's effective value for a setting: the environment first, then `pip config`
    local env_name=$1 key=$2 value
    value=${!env_name:-}
    if [ -z "$value" ]; then
        value=$(python3 -m pip config list 2>/dev/null | sed -n "s/^[a-z:.]*\.$key='\(.*\)'$/\1/p" | head -1)
    fi
    printf '%s' "$value"
}
cert=$(pip_setting PIP_CERT cert)
cert=${cert:-/etc/ssl/certs/ca-certificates.crt}
find_links=$(pip_setting PIP_FIND_LINKS find-links)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$work/rootfs.tar"
docker import "$work/rootfs.tar" "$image-rootfs" >/dev/null

mkdir -p "$work/context/wheels"
cp "$cert" "$work/context/ca-bundle.crt"
for dir in $find_links; do  # only the wheels this image's Python (3.11) can install
    [ -d "$dir" ] && find "$dir" -maxdepth 1 -name '*-cp311-*.whl' -exec cp {} "$work/context/wheels/" \;
done
cat > "$work/context/Dockerfile" <<DOCKERFILE
FROM $image-rootfs
COPY ca-bundle.crt /etc/ssl/certs/pip-ca-bundle.crt
COPY wheels/ /opt/wheels/
RUN ln -s /usr/bin/python3 /usr/local/bin/python
ENV PIP_CERT=/etc/ssl/certs/pip-ca-bundle.crt PIP_FIND_LINKS=/opt/wheels PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180 LANG=C.UTF-8
CMD ["python"]
DOCKERFILE
docker build --quiet -t "$image" "$work/context" >/dev/null
docker image rm "$image-rootfs" >/dev/null
echo "built base image $image ($(ls "$work/context/wheels" | wc -l) local wheels)"
