#!/usr/bin/env bash
# System packages for `make test-real` (the real-component layer): Debian's CNCF distribution
# registry, skopeo, htpasswd, jq, openssl, util-linux/mount (setpriv, unshare, mount), iproute2,
# Debian's python3 (run as UID 1000, which cannot run a venv under /root), a static C toolchain,
# and containerd 2.1 -- the major version Bottlerocket's aws-k8s-1.33+ variants ship. Debian
# stable carries containerd 1.6, so the newest 2.1.x is taken from Debian unstable's archive (same
# mirror as this machine's own sources) and unpacked into .cache/containerd/ (nothing is installed
# system-wide from unstable). Needs root (apt); idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.cache/containerd
WANT_SERIES="${CONTAINERD_SERIES:-2.1}"

need=()
for pkg in docker-registry skopeo apache2-utils jq openssl util-linux mount iproute2 python3 build-essential; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "==> apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi
# the registry package starts a system service on install: the tests run their own on 127.0.0.1
systemctl disable --now docker-registry > /dev/null 2>&1 || true

if [ -x "$CACHE/usr/bin/containerd" ] && "$CACHE/usr/bin/containerd" --version | grep -q " $WANT_SERIES\."; then
  exit 0
fi
echo "==> fetching containerd $WANT_SERIES.x (Debian unstable) into $CACHE"
# The mirror this machine already uses for Debian (first URI of its sources), with unstable as suite.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 ~ /debian/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' /etc/apt/sources.list)
[ -n "$mirror" ] || { echo "install-real-deps: no Debian mirror found in /etc/apt/sources.list*" >&2; exit 1; }
apt_dir=$(mktemp -d)
trap 'rm -rf "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror unstable main" > "$apt_dir/sources.list"
opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=$apt_dir/parts"
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Dir::State::status=/dev/null"
      -o "APT::Sandbox::User=root")
apt-get "${opts[@]}" update -qq
version=$(apt-cache "${opts[@]}" madison containerd | awk -v s="$WANT_SERIES" '$3 ~ "^"s"\\." {print $3; exit}')
[ -n "$version" ] || { echo "install-real-deps: Debian unstable has no containerd $WANT_SERIES.x (set CONTAINERD_SERIES)" >&2; exit 1; }
(cd "$apt_dir" && apt-get "${opts[@]}" download "containerd=$version" > /dev/null)
rm -rf "$CACHE"
mkdir -p "$CACHE"
dpkg-deb -x "$apt_dir"/containerd_*.deb "$CACHE"
"$CACHE/usr/bin/containerd" --version
