#!/usr/bin/env bash
# Regenerate the typed Karpenter constructs in k8s_charts/imports/ from the CRDs in k8s_charts/crds/.
#
# The CRDs are verbatim copies of aws/karpenter-provider-aws v1.14.1 (see crds/SOURCE.txt; the
# tests check their git blob hashes). To move to another Karpenter release: replace the two YAML
# files, update SOURCE.txt, run this script, run `pytest tests/k8s_charts`, and commit all of it.
#
# Usage: k8s_charts/regenerate_imports.sh [OUTPUT_DIR]   (default: k8s_charts/imports; the tests
# regenerate into a temporary directory and compare byte for byte with the committed files).
#
# Uses the pinned cdk8s CLI from package.json (npm ci first). Offline: --no-check-upgrade stops
# the CLI from asking the npm registry for a newer version of itself.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cdk8s="$repo/node_modules/.bin/cdk8s"
if [[ ! -x "$cdk8s" ]]; then
  echo "error: $cdk8s not found; run 'npm ci' in $repo first (cdk8s-cli is pinned in package.json)" >&2
  exit 1
fi

out="${1:-$here/imports}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$here"
rm -rf "$out/karpenter_k8s_aws" "$out/karpenter_sh"
# One module per CRD (one call each: the CLI imports only the first file of a multi-file call).
# The module names become the Python packages k8s_charts.imports.<module>.
"$cdk8s" import --no-check-upgrade --no-save --language python --output "$out" \
  karpenter_k8s_aws:=crds/karpenter.k8s.aws_ec2nodeclasses.yaml
"$cdk8s" import --no-check-upgrade --no-save --language python --output "$out" \
  karpenter_sh:=crds/karpenter.sh_nodepools.yaml
echo "regenerated $(find "$out" -name '*.py' | wc -l) Python files in $out"
