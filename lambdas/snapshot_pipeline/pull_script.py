"""The pipeline's SSM Command document: a FIXED script that pulls, pins and verifies the images.

The stack ships ``document_content()`` as an ``AWS::SSM::Document`` (stacks/pipeline/pull_document.py) named
``names.pull_document_name(<pipeline name>)``;
the start_pull function may run only that document on the builder, passing DATA parameters:
- ``pulls``: space-separated records ``<pinned-ref>|<ecr 1|0>|<tag-ref or ->``;
- ``platforms``: space-separated ``linux/<arch>``;
- ``executionTimeout``: seconds (as in AWS-RunShellScript).
SSM substitutes ``{{ pulls }}``/``{{ platforms }}`` TEXTUALLY into the command text before a shell
reads it, so each parameter's ``allowedPattern`` (checked by SSM at SendCommand) is the injection
guard: only image-reference characters, no quotes, ``$``, backticks, ``;``, ``|`` outside the record
separators or spaces inside a record. The values land inside single quotes and reach the host script
as positional arguments, which it never evaluates as code.

The script runs in Bottlerocket's control container and hands one script to the host through
``apiclient exec admin sheltie bash -c '<script>' coldstart-pull '<pulls>' '<platforms>'``. On the host it:
- gets the ECR password from Bottlerocket's kubelet ECR credential provider (the instance role
  signs the request), so no credential is ever in the SSM command, its output or any log;
- pulls each image by digest for every platform into containerd's ``k8s.io`` namespace with the
  labels ``io.cri-containerd.image=managed`` (CRI lists it) and ``io.cri-containerd.pinned=pinned``
  (kubelet's image garbage collection skips it), and tags the tag reference to the same content;
- prints one ``COLDSTART-VERIFY key=value ...`` line per image from ``ctr images ls``, which the
  verify step parses (``parse_verify_lines``).

The host script uses bash builtins only (no sed/awk/jq), since the Bottlerocket host has few tools.
Offline-derived facts (confirm on AWS, see docs/pipeline.md): the credential provider path and its
stdin protocol, ``apiclient exec`` without a TTY passing the arguments through, ctr's repeated
``--platform`` flags.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from . import names
from .errors import InputValidationError

CREDENTIAL_PROVIDER = "/usr/libexec/kubernetes/kubelet/plugins/ecr-credential-provider"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"

PULLS = "pulls"
PLATFORMS = "platforms"
EXECUTION_TIMEOUT = "executionTimeout"
NO_TAG = "-"  # third field of a pull record when the image is referenced by digest only
# Image-reference characters (what images._REFERENCE accepts) and nothing a shell treats specially; a
# reference starts with a letter or digit, so it cannot pose as a ctr option (``--...``).
_REF = r"[A-Za-z0-9][A-Za-z0-9._/:@-]*"
_RECORD = rf"{_REF}\|[01]\|({_REF}|{NO_TAG})"
PULLS_PATTERN = rf"^{_RECORD}( {_RECORD})*$"
_PLATFORM = "linux/(" + "|".join(sorted(names.PLATFORM_TO_ARCH)) + ")"
PLATFORMS_PATTERN = rf"^{_PLATFORM}( {_PLATFORM})*$"
# 1..172800 seconds, AWS-RunShellScript's own executionTimeout pattern.
EXECUTION_TIMEOUT_PATTERN = r"^([1-9][0-9]{0,4}|1[0-6][0-9]{4}|17[01][0-9]{3}|172[0-7][0-9]{2}|172800)$"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")

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


_HOST_MAIN = r"""main() {
  # $1: pull records "<pinned-ref>|<ecr 1|0>|<tag-ref or ->" separated by spaces; $2: "linux/<arch> ...".
  # read -a splits on spaces without glob expansion; the values are data, never evaluated.
  local -a records platforms flags=() refs=()
  read -r -a records <<< "$1"
  read -r -a platforms <<< "$2"
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


def host_script(*, credential_provider: str = CREDENTIAL_PROVIDER) -> str:
    """The fixed host script; the images and platforms arrive as its positional arguments $1 and $2."""
    return (
        _HOST_FUNCTIONS.replace("__SOCKET__", CONTAINERD_SOCKET)
        .replace("__NAMESPACE__", names.CONTAINERD_NAMESPACE)
        .replace("__PROVIDER__", shlex.quote(credential_provider))
        .replace("__MANAGED__", names.CRI_MANAGED_LABEL)
        .replace("__PINNED__", names.CRI_PINNED_LABEL)
        .replace("__PREFIX__", names.VERIFY_LINE_PREFIX)
    ) + _HOST_MAIN


def document_commands(*, credential_provider: str = CREDENTIAL_PROVIDER) -> list[str]:
    """The document's ``runCommand`` lines (the parameters are SSM placeholders; nothing secret is in them)."""
    script = "\n".join(
        [
            "# vllm-coldstart: pull, pin and verify the snapshot's images (credentials are fetched on the host)",
            "set -euo pipefail",
            # The parameters sit in single quotes; their allowedPattern admits no quote, so they cannot leave them.
            "apiclient exec admin sheltie bash -c " + shlex.quote(host_script(credential_provider=credential_provider))
            + f" coldstart-pull '{{{{ {PULLS} }}}}' '{{{{ {PLATFORMS} }}}}'",
        ]
    )
    return script.split("\n")


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


def command_parameters(images: list[dict[str, Any]], platforms: list[str]) -> dict[str, list[str]]:
    """SendCommand ``Parameters`` for the document; raises InputValidationError for a value SSM would refuse."""
    records = []
    for image in images:
        ecr = "1" if image["kind"] == "ecr-private" else "0"
        tagref = image["reference"] if image["reference"] != image["pinned"] else NO_TAG
        records.append(f"{image['pinned']}|{ecr}|{tagref}")
    parameters = {PULLS: [" ".join(records)], PLATFORMS: [" ".join(f"linux/{p}" for p in platforms)]}
    for name, pattern in ((PULLS, PULLS_PATTERN), (PLATFORMS, PLATFORMS_PATTERN)):
        (value,) = parameters[name]
        if not re.fullmatch(pattern, value):
            raise InputValidationError(
                f"pull document parameter {name}={value!r} does not match {pattern}: images must be plain references "
                f"(registry/repository[:tag]@sha256:<digest>) and platforms one of {sorted(names.PLATFORM_TO_ARCH)}"
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
