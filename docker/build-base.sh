#!/usr/bin/env bash
# A base image built from distribution packages, for machines that reach no image registry (this one, CI),
# via mmdebstrap and `docker import`:
#   bookworm (default): Debian minbase + python3/venv/pip + CA certificates, the base of docker/Dockerfile.cpu;
#   noble: Ubuntu 24.04 minbase + apt + CA certificates, with the archive's `main universe` sources, a stand-in for
#          docker/Dockerfile.gpu's CUDA base (same Ubuntu release; PyPI's torch brings its own CUDA libraries,
#          and the GPU driver comes from the host). The Ubuntu archive key is fetched from the archive and
#          used only if its fingerprint is the one Ubuntu publishes.
# It carries this machine's pip set-up so pip inside a build reaches the same package registry:
# the CA bundle pip is configured with (PIP_CERT / `pip config list`) and, on bookworm, the wheels of its
# local find-links folder that Python 3.11 installs (torch's CPU wheel lives there; PyPI's torch is the
# multi-GB CUDA build).
# Usage: docker/build-base.sh [IMAGE [SUITE]]   (default twinsft-base:bookworm bookworm; skipped when the image
# exists, TWINSFT_REBUILD_BASE=1 rebuilds). Needs root, docker and mmdebstrap.
set -euo pipefail
image=${1:-twinsft-base:bookworm}
suite=${2:-bookworm}
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
mkdir -p "$work/context/wheels"
case "$suite" in
bookworm)
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$work/rootfs.tar"
    for dir in $find_links; do  # only the wheels this image's Python (3.11) can install
        [ -d "$dir" ] && find "$dir" -maxdepth 1 -name '*-cp311-*.whl' -exec cp {} "$work/context/wheels/" \;
    done
    link_python='RUN ln -s /usr/bin/python3 /usr/local/bin/python'
    ;;
noble)
    mirror=${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
    archive_key=F6ECB3762474EDA9D21B7022871920D1991BC93C  # Ubuntu Archive Automatic Signing Key (2018)
    keyring_deb=pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb
    curl -fsS --retry 3 -o "$work/keyring.deb" "$mirror/$keyring_deb"
    dpkg-deb -x "$work/keyring.deb" "$work/keyring"
    chmod a+rx "$work"  # apt reads the keyring as its unprivileged _apt user
    keyring="$work/keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg"
    if ! gpg --show-keys --with-colons "$keyring" 2>/dev/null | grep -q "^fpr:::::::::$archive_key:"; then
        echo "build-base.sh: $mirror/$keyring_deb does not hold Ubuntu's archive key $archive_key" >&2
        exit 2
    fi
    mmdebstrap --quiet --variant=minbase --include=apt,ca-certificates --components=main,universe \
        --keyring="$keyring" noble "$work/rootfs.tar" "$mirror"
    link_python=''
    ;;
*)
    echo "build-base.sh: unknown suite '$suite' (bookworm or noble)" >&2
    exit 2
    ;;
esac
docker import "$work/rootfs.tar" "$image-rootfs" >/dev/null

cp "$cert" "$work/context/ca-bundle.crt"
cat > "$work/context/Dockerfile" <<DOCKERFILE
FROM $image-rootfs
COPY ca-bundle.crt /etc/ssl/certs/pip-ca-bundle.crt
COPY wheels/ /opt/wheels/
$link_python
ENV PIP_CERT=/etc/ssl/certs/pip-ca-bundle.crt PIP_FIND_LINKS=/opt/wheels PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180 LANG=C.UTF-8
CMD ["python"]
DOCKERFILE
docker build --quiet -t "$image" "$work/context" >/dev/null
docker image rm "$image-rootfs" >/dev/null
echo "built base image $image from $suite ($(ls "$work/context/wheels" | wc -l) local wheels)"
