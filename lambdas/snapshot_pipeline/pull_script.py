"""The shell script the builder runs through SSM to pull, pin and verify the images.

It runs in Bottlerocket's control container (AWS-RunShellScript) and hands one script to the host
through ``apiclient exec admin sheltie bash -c '<script>'``. On the host it:
- gets the ECR password from Bottlerocket's kubelet ECR credential provider (the instance role
  signs the request), so no credential is ever in the SSM command, its output or any log;
- pulls each image by digest for every platform into containerd's ``k8s.io`` namespace with the
  labels ``io.cri-containerd.image=managed`` (CRI lists it) and ``io.cri-containerd.pinned=pinned``
  (kubelet's image garbage collection skips it), and tags the tag reference to the same content;
- prints one ``COLDSTART-VERIFY key=value ...`` line per image from ``ctr images ls``, which the
  verify step parses (``parse_verify_lines``).

The host script uses bash builtins only (no sed/awk/jq), since the Bottlerocket host has few tools.
Offline-derived facts (confirm on AWS, see docs/pipeline.md): the credential provider path and its
stdin protocol, ``apiclient exec`` without a TTY, ctr's repeated ``--platform`` flags.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from . import names

CREDENTIAL_PROVIDER = "/usr/libexec/kubernetes/kubelet/plugins/ecr-credential-provider"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
_IMAGES_HEADER = "# coldstart-images: "
_PLATFORMS_HEADER = "# coldstart-platforms: "

_HOST_FUNCTIONS = r"""set -euo pipefail
ctr_k8s() { ctr -a __SOCKET__ -n __NAMESPACE__ "$@"; }
ecr_password() {
  # kubelet's credential provider protocol: request on stdin, JSON with auth.<registry>.password out.
  local response
  response=$(printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"%s"}' "$1" | __PROVIDER__)
  if [[ $response =~ \"password\":\"([^\"]+)\" ]]; then printf '%s' "${BASH_REMATCH[1]}"; fi
}
pull() {
  # pull <pinned-ref> <ecr:1|0> <tag-ref or -> <platform flags...>
  local ref=$1 ecr=$2 tagref=$3; shift 3
  local -a auth=()
  if [ "$ecr" = 1 ]; then
    local password
    password=$(ecr_password "$ref")
    if [ -z "$password" ]; then echo "no ECR credential from the kubelet credential provider for $ref" >&2; return 1; fi
    auth=(--user "AWS:$password")
  fi
  echo "pulling $ref"
  ctr_k8s images pull "$@" --label __MANAGED__ --label __PINNED__ "${auth[@]}" "$ref" > /dev/null
  if [ "$tagref" != - ]; then
    ctr_k8s images tag --force "$ref" "$tagref" > /dev/null
    ctr_k8s images label "$tagref" __MANAGED__ __PINNED__ > /dev/null
  fi
}
verify() {
  # ctr images ls columns: REF TYPE DIGEST SIZE(2 words) PLATFORMS LABELS
  local ref=$1 name type digest size unit platforms labels
  while read -r name type digest size unit platforms labels; do
    if [ "$name" = "$ref" ]; then
      echo "__PREFIX__ ref=$name digest=$digest platforms=$platforms labels=$labels"
      return 0
    fi
  done < <(ctr_k8s images ls "name==$ref")
  echo "__PREFIX__ ref=$ref missing=true"
}
"""


def host_script(images: list[dict[str, Any]], platforms: list[str], *, credential_provider: str = CREDENTIAL_PROVIDER) -> str:
    script = (
        _HOST_FUNCTIONS.replace("__SOCKET__", CONTAINERD_SOCKET)
        .replace("__NAMESPACE__", names.CONTAINERD_NAMESPACE)
        .replace("__PROVIDER__", shlex.quote(credential_provider))
        .replace("__MANAGED__", names.CRI_MANAGED_LABEL)
        .replace("__PINNED__", names.CRI_PINNED_LABEL)
        .replace("__PREFIX__", names.VERIFY_LINE_PREFIX)
    )
    platform_flags = " ".join(f"--platform linux/{p}" for p in platforms)
    lines = [script]
    for image in images:
        ecr = "1" if image["kind"] == "ecr-private" else "0"
        tagref = image["reference"] if image["reference"] != image["pinned"] else "-"
        lines.append(f"pull {shlex.quote(image['pinned'])} {ecr} {shlex.quote(tagref)} {platform_flags}")
    for image in images:
        lines.append(f"verify {shlex.quote(image['pinned'])}")
    return "\n".join(lines) + "\n"


def ssm_commands(images: list[dict[str, Any]], platforms: list[str], *, credential_provider: str = CREDENTIAL_PROVIDER) -> list[str]:
    """The AWS-RunShellScript ``commands``. The header lines say what is pulled; nothing secret is in them."""
    manifest = [{"pinned": i["pinned"], "reference": i["reference"], "digest": i["digest"]} for i in images]
    script = "\n".join(
        [
            "# vllm-coldstart: pull, pin and verify the snapshot's images (credentials are fetched on the host)",
            _IMAGES_HEADER + json.dumps(manifest, separators=(",", ":")),
            _PLATFORMS_HEADER + json.dumps(platforms),
            "set -euo pipefail",
            "apiclient exec admin sheltie bash -c " + shlex.quote(host_script(images, platforms, credential_provider=credential_provider)),
        ]
    )
    return script.split("\n")


def manifest_from_commands(commands: list[str]) -> tuple[list[dict[str, str]], list[str]]:
    """The images and platforms a pull command was sent for (read back from its header lines)."""
    images: list[dict[str, str]] = []
    platforms: list[str] = []
    for line in commands:
        if line.startswith(_IMAGES_HEADER):
            images = json.loads(line[len(_IMAGES_HEADER):])
        elif line.startswith(_PLATFORMS_HEADER):
            platforms = json.loads(line[len(_PLATFORMS_HEADER):])
    return images, platforms


def verify_line(ref: str, digest: str, platforms: list[str], labels: list[str]) -> str:
    """A verification line exactly as the host script prints it (used by the emulator and tests)."""
    plats = ",".join(f"linux/{p}" for p in platforms)
    return f"{names.VERIFY_LINE_PREFIX} ref={ref} digest={digest} platforms={plats} labels={','.join(labels)}"


def parse_verify_lines(output: str) -> dict[str, dict[str, str]]:
    """ref -> {key: value} for every verification line in the command output."""
    found: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        parts = line.strip().split()
        if not parts or parts[0] != names.VERIFY_LINE_PREFIX:
            continue
        fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if "ref" in fields:
            found[fields["ref"]] = fields
    return found


def verification_problems(output: str, images: list[dict[str, Any]], platforms: list[str]) -> list[str]:
    """Everything wrong with the pulled images according to the verification lines ([] = all good)."""
    lines = parse_verify_lines(output)
    problems = []
    for image in images:
        ref = image["pinned"]
        fields = lines.get(ref)
        if fields is None:
            problems.append(f"{ref}: no verification line in the command output")
            continue
        if fields.get("missing") == "true":
            problems.append(f"{ref}: not in containerd's {names.CONTAINERD_NAMESPACE} namespace after the pull")
            continue
        if fields.get("digest") != image["digest"]:
            problems.append(f"{ref}: containerd holds digest {fields.get('digest')}, expected {image['digest']}")
        labels = set(fields.get("labels", "").split(","))
        for label in (names.CRI_PINNED_LABEL, names.CRI_MANAGED_LABEL):
            if label not in labels:
                problems.append(f"{ref}: label {label} missing (kubelet could garbage-collect it)")
        have = set(fields.get("platforms", "").split(","))
        for platform in platforms:
            if f"linux/{platform}" not in have:
                problems.append(f"{ref}: platform linux/{platform} missing")
    return problems
