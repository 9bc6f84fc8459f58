#!/bin/bash
# PID 1 of the host model: private network, mount and PID namespaces (unshare), so /proc/1/mountinfo
# is this namespace's mount table, 127.0.0.1:443 is free, and every process here dies with it.
# Usage: init.sh <workdir>. Reads <workdir>/scenario.env; writes <workdir>/out/*.
set -euo pipefail
W=$1
# shellcheck disable=SC1091
source "$W/scenario.env"   # CONTAINERD CTR DATA_SERIAL REGISTRY_UP TOKEN PUSH_LAYOUTS DELETE_BLOBS
OUT=$W/out
mkdir -p "$OUT"
log() { echo "[host-model] $*" >> "$OUT/model.log"; }
bounded_wait() {  # bounded_wait <tries of 0.1 s> <command...>: poll, never an unbounded loop
  local tries=$1; shift
  until "$@" > /dev/null 2>&1; do tries=$((tries - 1)); [ "$tries" -gt 0 ] || return 1; sleep 0.1; done
}

ip link set lo up
mount -t tmpfs coldstart-run /run
mkdir -p /run/containerd
# The data volume: a file system mounted at /local, containerd's root bind-mounted from it (as
# Bottlerocket mounts /local from the data volume and keeps /var/lib/containerd there).
mkdir -p /local /var/lib/containerd
mount -t tmpfs coldstart-data /local
mkdir -p /local/var/lib/containerd
mount --bind /local/var/lib/containerd /var/lib/containerd
# sysfs for the block device behind it: the kernel names the device by MAJ:MIN; EBS sets the NVMe
# serial to the volume ID without its dash. tmpfs has no sysfs entry, so the model provides one.
dev=$(mountpoint -d /var/lib/containerd)
mkdir -p "$W/sysblock/$dev/device"
echo "$DATA_SERIAL" > "$W/sysblock/$dev/device/serial"
mount --bind "$W/sysblock" /sys/dev/block
# containerd's daemon resolves and fetches (ctr 2.x hands pulls to its transfer service), so the
# host's name table and CA bundle are the daemon's: the ECR name points at the test registry.
mount --bind "$W/hostroot/etc/hosts" /etc/hosts
mount --bind "$W/hostroot/etc/ssl/certs/ca-certificates.crt" /etc/ssl/certs/ca-certificates.crt
# the host root seen through sheltie (chroot) talks to containerd over this socket
mount --bind /run/containerd "$W/hostroot/run/containerd"

"$CONTAINERD" --config "$W/containerd.toml" >> "$OUT/containerd.log" 2>&1 &
docker-registry serve "$W/registry/config.yml" >> "$OUT/registry.log" 2>&1 &
registry_pid=$!
bounded_wait 300 "$CTR" -a /run/containerd/containerd.sock version || { log "containerd did not start"; exit 10; }
bounded_wait 300 bash -c 'exec 3<>/dev/tcp/127.0.0.1/443' || { log "registry did not start"; exit 11; }
for layout in $PUSH_LAYOUTS; do   # "<oci dir>=<repository:tag>"
  skopeo --insecure-policy copy --quiet --all --dest-tls-verify=false --dest-creds "AWS:$TOKEN" \
    "oci:${layout%%=*}" "docker://127.0.0.1:443/${layout#*=}" >> "$OUT/skopeo.log" 2>&1
done
for blob in $DELETE_BLOBS; do  # a layer lost from the registry's storage
  rm -f "$W/registry/data/docker/registry/v2/blobs/sha256/${blob:0:2}/$blob/data"
done
if [ "$REGISTRY_UP" != 1 ]; then kill "$registry_pid"; wait "$registry_pid" || true; fi

# The SSM agent's aws:runShellScript: the command text run by sh in the control container.
set +e
env -i PATH="$W/control-bin" HOME=/root /bin/sh "$W/document.sh" > "$OUT/stdout" 2> "$OUT/stderr"
echo $? > "$OUT/rc"
set -e

# The "snapshot": stop containerd (the pipeline stops the instance), copy its root, open the copy
# with a fresh containerd and list what a node restored from it would find.
pkill -TERM -x containerd || true
bounded_wait 300 bash -c '! pgrep -x containerd' || log "containerd did not stop"
cp -a /var/lib/containerd "$W/snapshot"
sed -e "s#^root = .*#root = \"$W/snapshot\"#" -e "s#/run/containerd/containerd.sock#/run/restored.sock#" \
    -e "s#^state = .*#state = \"/run/restored-state\"#" "$W/containerd.toml" > "$W/restored.toml"
"$CONTAINERD" --config "$W/restored.toml" >> "$OUT/containerd-restored.log" 2>&1 &
bounded_wait 300 "$CTR" -a /run/restored.sock version || { log "restored containerd did not start"; exit 12; }
"$CTR" -a /run/restored.sock -n k8s.io images ls > "$OUT/restored-images-ls" 2>&1 || true
"$CTR" -a /run/restored.sock -n k8s.io images check > "$OUT/restored-images-check" 2>&1 || true
"$CTR" -a /run/restored.sock -n k8s.io snapshots ls > "$OUT/restored-snapshots" 2>&1 || true
{ "$CONTAINERD" --version; docker-registry --version; skopeo --version; } > "$OUT/versions" 2>&1
pkill -TERM -x containerd || true
exit 0
