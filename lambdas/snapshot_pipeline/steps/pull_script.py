"""The pipeline's SSM Command document: a FIXED script that pulls, pins and verifies the images.

The stack ships ``document_content()`` as an ``AWS::SSM::Document`` (stacks/pipeline/pull_document.py) named
``names.pull_document_name(<pipeline name>)``; the start_pull function may run only that document on the
builder, passing DATA parameters:
- ``pulls``: space-separated records ``<pinned-ref>|<ecr 1|0>|<tag-ref or ->``;
- ``platforms``: space-separated ``linux/<arch>``;
- ``dataVolumeId``: the EBS volume the pipeline will snapshot (``vol-...``);
- ``adminWaitSeconds``: how long to wait for the admin host container; ``executionTimeout``: seconds.
SSM substitutes ``{{ name }}`` TEXTUALLY into the command text before a shell reads it, so each
parameter's ``allowedPattern`` (checked by SSM at SendCommand) is the injection guard: only
image-reference characters, no quotes, ``$``, backticks, ``;``, ``|`` outside the record separators or
spaces inside a record. The values land inside single quotes and reach the scripts as positional
arguments, which they never evaluate as code.

Where each line runs (Bottlerocket's own sources, see docs/pipeline.md "Offline-derived facts"):
- the document's commands run in the CONTROL container (the SSM agent's shell);
- ``apiclient exec admin CMD`` runs CMD in the ADMIN container (Amazon Linux 2 userland: bash, jq,
  coreutils, util-linux; bottlerocket-os/bottlerocket-admin-container ``Dockerfile``). It fails while
  the admin container is still starting, so the document first waits, bounded, for ``apiclient exec
  admin true`` and ends ``AdminContainerNotReady`` otherwise;
- the Bottlerocket HOST has no shell (no bash, no sh: bottlerocket-os/bottlerocket#367), so the whole
  script runs in the admin container's bash, and each host binary is reached ONE CALL AT A TIME
  through ``sheltie CMD ARGS`` (the admin container's ``sheltie``: ``nsenter -t 1 -a -- "$@"``):
  ``sheltie ctr ...`` and ``sheltie <ecr-credential-provider>``, as aws-samples/bottlerocket-images-cache
  ``snapshot.sh`` does with ``apiclient exec admin sheltie ctr``.

The admin script:
- checks that containerd's root (``/var/lib/containerd``, on ``/local``) is on the data volume that will
  be snapshotted: the mount holding it in the host's mount table (``/proc/1/mountinfo``; the admin
  container shares the host PID namespace) is a block device whose NVMe serial is the EBS volume ID
  without its dash (EBS sets it so on Nitro instances). Otherwise ``DataVolumeNotMounted``: an empty
  snapshot is never published;
- gets the ECR password from the host's kubelet ECR credential provider (a v1
  ``CredentialProviderRequest`` on stdin, ``auth.<registry>.password`` out; the instance role signs
  the ECR call), so no credential is ever in the SSM command, its output or any log;
- pulls each image by digest for every platform into containerd's ``k8s.io`` namespace with the labels
  ``io.cri-containerd.image=managed`` and ``io.cri-containerd.pinned=pinned`` (kubelet's image garbage
  collection skips pinned images) and tags the tag reference to the same content; a failed pull ends
  ``ImagePullFailed`` with ctr's own message (``pull.check`` names the cause);
- prints one ``COLDSTART-VERIFY key=value ...`` line per image from ``ctr images ls`` and ``ctr images
  check`` (content complete, unpacked), which the verify step parses (``parse_verify_lines``).

A named failure is one line ``COLDSTART-ERROR <Name> <message>`` on stdout and exit code 3.
The admin image's /bin/bash is Amazon Linux 2's bash 4.2: the script avoids newer constructs (an empty
array is expanded as ``${a[@]+"${a[@]}"}``, which 4.2 needs under ``set -u``).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from settings import names

from ..core.errors import InputValidationError

CREDENTIAL_PROVIDER = "/usr/libexec/kubernetes/kubelet/plugins/ecr-credential-provider"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CONTAINERD_ROOT = "/var/lib/containerd"
ERROR_LINE_PREFIX = "COLDSTART-ERROR"
ERROR_EXIT_CODE = 3

PULLS = "pulls"
PLATFORMS = "platforms"
DATA_VOLUME_ID = "dataVolumeId"
ADMIN_WAIT_SECONDS = "adminWaitSeconds"
EXECUTION_TIMEOUT = "executionTimeout"
DEFAULT_ADMIN_WAIT_SECONDS = 300
ADMIN_POLL_SECONDS = 2
NO_TAG = "-"  # third field of a pull record when the image is referenced by digest only
# Image-reference characters (what images._REFERENCE accepts) and nothing a shell treats specially; a
# reference starts with a letter or digit, so it cannot pose as a ctr option (``--...``).
_REF = r"[A-Za-z0-9][A-Za-z0-9._/:@-]*"
_RECORD = rf"{_REF}\|[01]\|({_REF}|{NO_TAG})"
PULLS_PATTERN = rf"^{_RECORD}( {_RECORD})*$"
_PLATFORM = "linux/(" + "|".join(sorted(names.PLATFORM_TO_ARCH)) + ")"
PLATFORMS_PATTERN = rf"^{_PLATFORM}( {_PLATFORM})*$"
DATA_VOLUME_PATTERN = r"^vol-[0-9a-f]{8,17}$"
ADMIN_WAIT_PATTERN = r"^[0-9]{1,4}$"
# 1..172800 seconds, AWS-RunShellScript's own executionTimeout pattern.
EXECUTION_TIMEOUT_PATTERN = r"^([1-9][0-9]{0,4}|1[0-6][0-9]{4}|17[01][0-9]{3}|172[0-7][0-9]{2}|172800)$"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")

# Runs in the admin container's bash; host binaries only through `sheltie CMD` (one call each).
_ADMIN_FUNCTIONS = r"""set -euo pipefail
exec 3>&1  # named failures go to the command's stdout even from inside $( )
fail() { local name=$1; shift; echo "__ERROR__ $name $*" >&3; exit __EXIT__; }
ctr_k8s() { sheltie ctr -a __SOCKET__ -n __NAMESPACE__ "$@"; }
check_data_volume() {
  # $1: vol-... The mount holding containerd's root in the HOST mount table (pid 1; the last,
  # longest matching mount point is the one in effect), then that block device's EBS NVMe serial.
  local want=${1/-/} best="" dev="" id parent majmin root mp rest serial="" sys
  while read -r id parent majmin root mp rest; do
    if [[ __ROOT__ == "$mp" || __ROOT__ == "${mp%/}/"* ]] && ((${#mp} >= ${#best})); then best=$mp; dev=$majmin; fi
  done < /proc/1/mountinfo
  sys=/sys/dev/block/$dev
  if [ -e "$sys/partition" ]; then sys=$sys/..; fi
  if [ -r "$sys/device/serial" ]; then read -r serial < "$sys/device/serial" || true; fi
  if [ "$serial" != "$want" ]; then
    fail DataVolumeNotMounted "containerd's root __ROOT__ is on mount ${best:-?} (device ${dev:-?}, EBS serial '${serial:-none}'), not on the data volume $1 that the pipeline snapshots"
  fi
  echo "data volume: __ROOT__ is on $best (device $dev) = $1"
}
ecr_password() {
  # kubelet's credential provider protocol (v1): request on stdin, auth.<registry>.password out.
  local registry=${1%%/*} response password
  response=$(printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"%s"}' "$1" \
             | sheltie __PROVIDER__ 2>/dev/null) \
    || fail EcrCredentialUnavailable "the kubelet ECR credential provider gave no credential for $registry: the builder role needs ecr:GetAuthorizationToken"
  password=$(jq -er --arg r "$registry" '.auth[$r].password // empty' <<< "$response") \
    || fail EcrCredentialUnavailable "the kubelet ECR credential provider's answer has no auth for $registry"
  printf '%s' "$password"
}
pull() {
  # pull <pinned-ref> <ecr:1|0> <tag-ref or -> <platform flags...>
  local ref=$1 ecr=$2 tagref=$3 password="" out; shift 3
  local -a auth=()
  if [ "$ecr" = 1 ]; then
    password=$(ecr_password "$ref")
    auth=(--user "AWS:$password")
  fi
  echo "pulling $ref"
  if ! out=$(ctr_k8s images pull "$@" --label __MANAGED__ --label __PINNED__ ${auth[@]+"${auth[@]}"} "$ref" 2>&1); then
    out=${out##*ctr: }  # ctr's own error, after its progress table
    out=${out//$'\n'/ }
    if [ -n "$password" ]; then out=${out//"$password"/<redacted>}; fi
    if ((${#out} > 700)); then out=...${out: -700}; fi
    fail ImagePullFailed "ctr could not pull $ref: $out"
  fi
  if [ "$tagref" != - ]; then
    ctr_k8s images tag --force "$ref" "$tagref" > /dev/null
    ctr_k8s images label "$tagref" __MANAGED__ __PINNED__ > /dev/null
  fi
}
verify() {
  # ctr images ls: REF TYPE DIGEST SIZE(2 words) PLATFORMS LABELS
  # ctr images check: REF TYPE DIGEST STATUS(2 words: complete (n/n)) SIZE(4 words: a/b) UNPACKED
  local ref=$1 name type digest size unit platforms labels status counts rest unpacked="" complete=""
  while read -r name type digest size unit platforms labels; do
    if [ "$name" = "$ref" ]; then break; fi
    name=""
  done < <(ctr_k8s images ls "name==$ref")
  if [ "$name" != "$ref" ]; then echo "__PREFIX__ ref=$ref missing=true"; return 0; fi
  while read -r name type digest status counts rest; do
    if [ "$name" = "$ref" ]; then complete=$status; unpacked=${rest##* }; break; fi
  done < <(ctr_k8s images check "name==$ref")
  echo "__PREFIX__ ref=$name digest=$digest platforms=$platforms labels=$labels content=${complete:-unknown} unpacked=${unpacked:-unknown}"
}
"""

_ADMIN_MAIN = r"""main() {
  # $1: pull records "<pinned-ref>|<ecr 1|0>|<tag-ref or ->" separated by spaces; $2: "linux/<arch> ...";
  # $3: the data volume ID. read -a splits on spaces without glob expansion; the values are data.
  local -a records platforms flags=() refs=()
  read -r -a records <<< "$1"
  read -r -a platforms <<< "$2"
  check_data_volume "$3"
  local record platform ref ecr tagref
  for platform in "${platforms[@]}"; do flags+=(--platform "$platform"); done
  for record in "${records[@]}"; do
    IFS='|' read -r ref ecr tagref <<< "$record"
    pull "$ref" "$ecr" "$tagref" "${flags[@]}"
    refs+=("$ref")
  done
  for ref in "${refs[@]}"; do verify "$ref"; done
}
main "$@"
"""

# Runs in the control container (the SSM agent's sh): wait for the admin container, then hand over.
_CONTROL = r"""# vllm-coldstart: pull, pin and verify the snapshot's images (credentials are fetched on the host)
set -eu
tries=$(( __WAIT__ / __POLL__ + 1 ))
until apiclient exec admin true > /dev/null 2>&1; do
  tries=$((tries - 1))
  if [ "$tries" -le 0 ]; then
    echo "__ERROR__ AdminContainerNotReady 'apiclient exec admin true' still failed after __WAIT__ s: the builder's user data must enable [settings.host-containers.admin]"
    exit __EXIT__
  fi
  sleep __POLL__
done
"""


def admin_script(*, credential_provider: str = CREDENTIAL_PROVIDER) -> str:
    """The fixed admin-container script; the records, platforms and volume ID arrive as $1, $2 and $3."""
    return (
        _ADMIN_FUNCTIONS.replace("__SOCKET__", CONTAINERD_SOCKET)
        .replace("__NAMESPACE__", names.CONTAINERD_NAMESPACE)
        .replace("__PROVIDER__", shlex.quote(credential_provider))
        .replace("__ROOT__", CONTAINERD_ROOT)
        .replace("__MANAGED__", names.CRI_MANAGED_LABEL)
        .replace("__PINNED__", names.CRI_PINNED_LABEL)
        .replace("__PREFIX__", names.VERIFY_LINE_PREFIX)
        .replace("__ERROR__", ERROR_LINE_PREFIX)
        .replace("__EXIT__", str(ERROR_EXIT_CODE))
    ) + _ADMIN_MAIN


def document_commands(*, credential_provider: str = CREDENTIAL_PROVIDER) -> list[str]:
    """The document's ``runCommand`` lines (the parameters are SSM placeholders; nothing secret is in them)."""
    control = (_CONTROL.replace("__WAIT__", f"{{{{ {ADMIN_WAIT_SECONDS} }}}}").replace("__POLL__", str(ADMIN_POLL_SECONDS))
               .replace("__ERROR__", ERROR_LINE_PREFIX).replace("__EXIT__", str(ERROR_EXIT_CODE)))
    # The parameters sit in single quotes; their allowedPattern admits no quote, so they cannot leave them.
    handover = ("apiclient exec admin bash -c " + shlex.quote(admin_script(credential_provider=credential_provider))
                + f" coldstart-pull '{{{{ {PULLS} }}}}' '{{{{ {PLATFORMS} }}}}' '{{{{ {DATA_VOLUME_ID} }}}}'")
    return (control + handover).split("\n")


def document_content(*, credential_provider: str = CREDENTIAL_PROVIDER) -> dict[str, Any]:
    """The SSM Command document (schema 2.2) the stack ships and the start_pull function runs."""
    return {
        "schemaVersion": "2.2",
        "description": "vllm-coldstart: pull, pin and verify the snapshot's images on the Bottlerocket builder host. "
                       "Fixed script; the parameters are data checked by allowedPattern.",
        "parameters": {
            PULLS: {"type": "String", "allowedPattern": PULLS_PATTERN,
                    "description": "Space-separated records <pinned-ref>|<1 if private ECR else 0>|<tag-ref or ->"},
            PLATFORMS: {"type": "String", "allowedPattern": PLATFORMS_PATTERN,
                        "description": "Space-separated platforms to pull, e.g. linux/amd64 linux/arm64"},
            DATA_VOLUME_ID: {"type": "String", "allowedPattern": DATA_VOLUME_PATTERN,
                             "description": "The EBS data volume that will be snapshotted; containerd's root must be on it"},
            ADMIN_WAIT_SECONDS: {"type": "String", "default": str(DEFAULT_ADMIN_WAIT_SECONDS), "allowedPattern": ADMIN_WAIT_PATTERN,
                                 "description": "Seconds to wait for the admin host container before AdminContainerNotReady"},
            EXECUTION_TIMEOUT: {"type": "String", "default": "3600", "allowedPattern": EXECUTION_TIMEOUT_PATTERN,
                                "description": "Seconds the pull may run before SSM stops it"},
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "pullPinVerify",
                "inputs": {"runCommand": document_commands(credential_provider=credential_provider),
                           "timeoutSeconds": f"{{{{ {EXECUTION_TIMEOUT} }}}}"},
            }
        ],
    }


def command_parameters(images: list[dict[str, Any]], platforms: list[str], data_volume_id: str) -> dict[str, list[str]]:
    """SendCommand ``Parameters`` for the document; raises InputValidationError for a value SSM would refuse."""
    records = []
    for image in images:
        ecr = "1" if image["kind"] == "ecr-private" else "0"
        tagref = image["reference"] if image["reference"] != image["pinned"] else NO_TAG
        records.append(f"{image['pinned']}|{ecr}|{tagref}")
    parameters = {PULLS: [" ".join(records)], PLATFORMS: [" ".join(f"linux/{p}" for p in platforms)], DATA_VOLUME_ID: [data_volume_id]}
    for name, pattern in ((PULLS, PULLS_PATTERN), (PLATFORMS, PLATFORMS_PATTERN), (DATA_VOLUME_ID, DATA_VOLUME_PATTERN)):
        (value,) = parameters[name]
        if not re.fullmatch(pattern, value):
            raise InputValidationError(
                f"pull document parameter {name}={value!r} does not match {pattern}: images must be plain references "
                f"(registry/repository[:tag]@sha256:<digest>), platforms one of {sorted(names.PLATFORM_TO_ARCH)}, "
                "and the data volume an EBS volume ID (vol-...)"
            )
    return parameters


def parameter_problems(content: dict[str, Any], parameters: dict[str, list[str]]) -> list[str]:
    """What SSM would refuse in ``parameters`` for the document ``content`` (unknown/missing names, allowedPattern)."""
    declared = content.get("parameters", {})
    problems = [f"{name}: not a parameter of the document" for name in parameters if name not in declared]
    for name, spec in declared.items():
        values = parameters.get(name, [spec["default"]] if "default" in spec else None)
        if values is None:
            problems.append(f"{name}: required parameter missing")
            continue
        if spec.get("type") == "String" and len(values) != 1:
            problems.append(f"{name}: a String parameter takes one value, got {len(values)}")
        pattern = spec.get("allowedPattern")
        problems += [f"{name}={v!r} does not match allowedPattern {pattern}" for v in values
                     if pattern and not re.fullmatch(pattern, v)]
    return problems


def render_commands(content: dict[str, Any], parameters: dict[str, list[str]]) -> str:
    """The shell text SSM runs: the runCommand lines with each placeholder replaced by its value (as SSM does).

    Refuses what SSM refuses first (``parameter_problems``), since that check is the injection guard.
    """
    problems = parameter_problems(content, parameters)
    if problems:
        raise ValueError("SSM would reject the parameters: " + "; ".join(problems))
    values = {name: (parameters.get(name) or [spec.get("default", "")])[0] for name, spec in content["parameters"].items()}
    (step,) = content["mainSteps"]
    return "\n".join(_PLACEHOLDER.sub(lambda m: values[m.group(1)], line) for line in step["inputs"]["runCommand"])


def pulled_images(parameters: dict[str, list[str]]) -> tuple[list[dict[str, str]], list[str]]:
    """The images ({pinned, reference, digest}) and platforms (amd64, ...) a SendCommand's parameters ask for."""
    images = []
    for record in " ".join(parameters.get(PULLS, [])).split():
        pinned, _, tagref = record.split("|", 2)
        images.append({"pinned": pinned, "reference": pinned if tagref == NO_TAG else tagref, "digest": pinned.rsplit("@", 1)[-1]})
    platforms = [p.removeprefix("linux/") for p in " ".join(parameters.get(PLATFORMS, [])).split()]
    return images, platforms


def verify_line(ref: str, digest: str, platforms: list[str], labels: list[str], *, content: str = "complete", unpacked: str = "true") -> str:
    """A verification line exactly as the admin script prints it (used by the emulator and tests)."""
    plats = ",".join(f"linux/{p}" for p in platforms)
    return (f"{names.VERIFY_LINE_PREFIX} ref={ref} digest={digest} platforms={plats} labels={','.join(labels)} "
            f"content={content} unpacked={unpacked}")


def named_failure(output: str) -> tuple[str, str] | None:
    """(error name, message) of the script's ``COLDSTART-ERROR <Name> <message>`` line, if it printed one."""
    for line in reversed(output.splitlines()):
        parts = line.strip().split(" ", 2)
        if len(parts) >= 2 and parts[0] == ERROR_LINE_PREFIX:
            return parts[1], parts[2] if len(parts) > 2 else ""
    return None


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
        if fields.get("content") != "complete":
            problems.append(f"{ref}: ctr images check reports content {fields.get('content')!r}, not complete")
        if fields.get("unpacked") != "true":
            problems.append(f"{ref}: not unpacked into the snapshotter (ctr images check: unpacked={fields.get('unpacked')})")
        labels = set(fields.get("labels", "").split(","))
        for label in (names.CRI_PINNED_LABEL, names.CRI_MANAGED_LABEL):
            if label not in labels:
                problems.append(f"{ref}: label {label} missing (kubelet could garbage-collect it)")
        have = set(fields.get("platforms", "").split(","))
        for platform in platforms:
            if f"linux/{platform}" not in have:
                problems.append(f"{ref}: platform linux/{platform} missing")
    return problems
