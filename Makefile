# zookeeper.migration: development, test and demo entry points.
#
# Two commands set everything up on a fresh Debian 12 machine (as root):
#   make demo   a whole migration (migrate.yml through verify and cutover) on local clusters and hosts
#   make test   every test stage CI runs (.ci/run is `make test`)
# Each target installs what it needs and is safe to re-run; stamps under
# .cache/ keep re-runs fast.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# The stages of `make test`, in order; the run stops at the first failure.
# Later stages (molecule, e2e) are added here.
TEST_STAGES := deps sanity lint pytest molecule

PYTHON ?= python3
VENV := $(CURDIR)/.venv
VENV_BIN := $(VENV)/bin
CACHE := $(CURDIR)/.cache
BUILD := $(CURDIR)/build

# Debian packages: ZooKeeper and a JRE for the real test servers, nspawn and
# mmdebstrap for the systemd test hosts, nc for readiness probes, git to list
# the tree, python3-venv for the project venv, openssl for TLS test keystores,
# shellcheck for ansible-test's shellcheck sanity test (skipped without it).
APT_PACKAGES := zookeeper default-jre-headless systemd-container mmdebstrap \
	netcat-openbsd git python3-venv openssl ca-certificates shellcheck prometheus

# The collection as Python and Ansible expect to find it: a directory
# ansible_collections/zookeeper/migration pointing at this checkout.
COLLECTIONS_ROOT := $(CACHE)/collections
COLLECTION_LINK := $(COLLECTIONS_ROOT)/ansible_collections/zookeeper/migration
COLLECTION_ENV := ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS_ROOT) \
	PYTHONPATH=$(COLLECTIONS_ROOT)$(if $(PYTHONPATH),:$(PYTHONPATH))

# ansible-test refuses symlinks: sanity runs in a real copy of the tree.
SANITY_DIR := $(BUILD)/ansible_collections/zookeeper/migration
# Without --python, ansible-test also tries pyenv shims of other versions (exit 127).
SANITY_PYTHON ?= 3.11
SANITY_ARGS ?=

# Tools that call other venv tools (ansible-lint, molecule, ansible-playbook)
# find them on PATH.
VENV_ENV := PATH=$(VENV_BIN):$$PATH
PYTEST := $(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/pytest

REQUIREMENTS := $(wildcard requirements/*.txt)
VENV_STAMP := $(CACHE)/stamps/venv-requirements

.PHONY: help
help:
	@echo 'Set-up commands (fresh Debian 12, as root):'
	@echo '  make demo        run migrate.yml end to end on local clusters and two systemd hosts'
	@echo '  make test        run every test stage: $(TEST_STAGES)'
	@echo 'Other targets:'
	@echo '  make deps        apt packages + project venv (.venv) with requirements/test.txt'
	@echo '  make sanity      ansible-test sanity on a copy under build/ansible_collections/'
	@echo '  make lint        ansible-lint, production profile (and observability-check)'
	@echo '  make observability-check  promtool check and unit tests of the shipped alert rules'
	@echo '  make units       unit tests'
	@echo '  make integration integration tests (real ZooKeeper)'
	@echo '  make pytest      unit and integration tests in one run'
	@echo '  make build       build the collection tarball into build/ and check its contents'
	@echo '  make install-check  install the built tarball as a user would (clean venv, oldest ansible-core) and run a playbook with it'
	@echo '  make matrix      sanity and unit tests with each supported ansible-core ($(ANSIBLE_CORE_VERSIONS))'
	@echo '  make bench       benchmarks (not part of make test)'
	@echo '  make chaos       $(CHAOS_RUNS) chaos runs of $(CHAOS_DURATION)s each (faults + writers + ledger; a short one is in make test)'
	@echo '  make demo-down   remove the demo clusters and hosts'
	@echo '  make clean       remove build/, .cache/ and test output (keeps .venv)'
	@echo '  make distclean   clean, and remove .venv too'

# ---------------------------------------------------------------- set-up

.PHONY: deps apt-packages venv collection-path
deps: apt-packages venv collection-path

# Installs only what is missing; `apt-get update` runs only then.
apt-packages:
	@missing=(); \
	for pkg in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$$pkg"); \
	done; \
	if (( $${#missing[@]} )); then \
		if [[ $$(id -u) -ne 0 ]]; then \
			echo "deps: missing Debian packages: $${missing[*]}; run make as root or install them" >&2; exit 1; \
		fi; \
		echo "deps: installing Debian packages: $${missing[*]}"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq; \
		apt-get install -y -qq --no-install-recommends "$${missing[@]}"; \
	else \
		echo "deps: Debian packages present"; \
	fi

venv: $(VENV_STAMP)

# Order-only: Debian's python3 needs python3-venv (an apt package) first.
$(VENV)/pyvenv.cfg: | apt-packages
	$(PYTHON) -m venv $(VENV)

# Re-installs when a requirements file changes or the venv was re-created.
$(VENV_STAMP): $(REQUIREMENTS) $(VENV)/pyvenv.cfg
	@echo "deps: installing requirements/test.txt into .venv (a few minutes the first time)"
	$(VENV_BIN)/python -m pip install --disable-pip-version-check -q -r requirements/test.txt
	@mkdir -p $(@D)
	@touch $@

collection-path:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

# ---------------------------------------------------------------- test stages

.PHONY: molecule
# The sync_daemon role on two real systemd hosts (systemd-nspawn): converge,
# idempotence, verify, destroy. molecule can crash before its own clean-up,
# so a failed run destroys the hosts itself.
molecule: deps
	$(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/molecule test -s sync_daemon || { $(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/molecule destroy -s sync_daemon; exit 1; }

.PHONY: test sanity ansible-test-pip-bootstrap lint units integration pytest
test:
	@MAKE='$(MAKE)' tests/utils/run-stages.sh $(TEST_STAGES)

# ansible-test creates its venvs without pip and downloads a pip bootstrap
# script from the internet, which CI cannot reach. It first looks for
# ~/.ansible/test/cache/get_pip_<pip version>.py: put our offline bootstrap
# there, under the name of each pip version the installed ansible-test names.
ansible-test-pip-bootstrap: venv
	@$(VENV_BIN)/python tests/utils/install-pip-bootstrap.py tests/utils/get_pip_offline.py

# The copy of the tree ansible-test runs in (make sanity, make matrix).
define copy_for_sanity
	tests/utils/copy-collection.sh $(CURDIR) $(SANITY_DIR)
	@# ansible-test walks up to the nearest .git to list files; this checkout's
	@# .git ignores build/ and would hide the copy. A repository of its own
	@# (nothing committed) makes it list every copied file as untracked, except
	@# its own output, which must never be linted.
	git -C $(SANITY_DIR) init -q
	echo 'tests/output/' >> $(SANITY_DIR)/.git/info/exclude
endef

sanity: deps ansible-test-pip-bootstrap
	$(copy_for_sanity)
	cd $(SANITY_DIR) && $(VENV_BIN)/ansible-test sanity --venv --python $(SANITY_PYTHON) $(SANITY_ARGS)

lint: deps observability-check
	$(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/ansible-lint

# The Prometheus alert rules shipped in extensions/observability: their syntax,
# and their unit tests (every alert firing and not firing), with Debian's promtool.
OBSERVABILITY_RULES := extensions/observability/prometheus
.PHONY: observability-check
observability-check: apt-packages
	promtool check rules $(OBSERVABILITY_RULES)/zookeeper-migration.rules.yml
	cd $(OBSERVABILITY_RULES) && promtool test rules zookeeper-migration.rules.test.yml

units: deps
	$(PYTEST) -m 'not bench' tests/unit

integration: deps
	$(PYTEST) -m 'integration and not bench' tests/integration

# pytest exits non-zero (5) when it collects no test: an empty run fails here.
# --durations: the slowest tests in every CI log, for the 25-minute budget of make test.
pytest: deps
	$(PYTEST) -m 'not bench' --durations=25 tests/unit tests/integration

# ---------------------------------------------------------------- build, bench, demo

.PHONY: build bench chaos demo demo-down
# Files that must never ship in the tarball (development, test and CI files),
# matched against the tarball's member names prefixed with 'migration/'.
BUILD_FORBIDDEN := /(tests|molecule)/|^[^/]+/(\.ci|\.venv|\.cache|\.ansible|build)/|^[^/]+/(Makefile|pytest\.ini|\.ansible-lint|requirements/test\.txt)$$

build: deps
	@mkdir -p $(BUILD)
	rm -f $(BUILD)/*.tar.gz
	$(VENV_BIN)/ansible-galaxy collection build --force --output-path $(BUILD) .
	@tarball=$$(ls $(BUILD)/zookeeper-migration-*.tar.gz); \
	if tar -tzf "$$tarball" | sed 's|^|migration/|' | grep -E '$(BUILD_FORBIDDEN)'; then \
		echo "build: $$tarball holds the files listed above, which must not ship" >&2; exit 1; \
	fi; \
	echo "build: $$tarball ($$(tar -tzf "$$tarball" | wc -l) entries, no test/molecule/CI files)"

bench: deps
	$(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/python tests/bench/bench_copy.py
	$(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/python tests/bench/bench_sync.py

# Consecutive runs of tests/harness/chaos.py (a bidirectional task under faults, every acknowledged write checked);
# each saves figures.json, the ledger and the logs under tests/output/chaos/run-N. Stops at the first failing run.
# CHAOS_ARGS: more options for every run, e.g. CHAOS_ARGS='--seed 7 --daemon-setting sync_journal=false'.
CHAOS_RUNS ?= 3
CHAOS_DURATION ?= 300
CHAOS_ARGS ?=
chaos: deps
	@for run in $$(seq 1 $(CHAOS_RUNS)); do \
		echo "chaos: run $$run of $(CHAOS_RUNS), $(CHAOS_DURATION) s"; \
		rm -rf $(CURDIR)/tests/output/chaos/run-$$run; \
		$(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/python tests/harness/chaos.py run --duration $(CHAOS_DURATION) \
			--output-dir $(CURDIR)/tests/output/chaos/run-$$run $(CHAOS_ARGS) || exit 1; \
	done

# ZK_VERSION=3.9 runs both ensembles on ZooKeeper 3.9.3 (Debian trixie's, fetched on first use).
ZK_VERSION ?= 3.8
demo: deps
	$(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/python tests/harness/demo.py run --zk-version $(ZK_VERSION)

# Only the demo's own hosts and clusters: others (molecule's, a test run's)
# share the same state files.
demo-down: venv collection-path
	$(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/python tests/harness/demo.py down

# ---------------------------------------------------------------- install-check, matrix

.PHONY: install-check matrix matrix-version
# The oldest ansible-core meta/runtime.yml supports (requires_ansible: '>=2.16.0' gives 2.16).
ANSIBLE_CORE_OLDEST := $(shell sed -nE "s/^requires_ansible: *['\"]?>=([0-9]+\.[0-9]+).*/\1/p" meta/runtime.yml)
INSTALL_CHECK_ANSIBLE_CORE ?= ansible-core==$(ANSIBLE_CORE_OLDEST).*

# The built tarball installed as a user installs it (docs/install.md): a clean
# venv under .cache/install-check with the oldest supported ansible-core, the
# collection in a scratch collections path (no link to this checkout), the
# requirements file it ships, then tests/install/smoke.yml against a real
# ZooKeeper server. tests/install/install-check.sh says what is checked.
install-check: build
	ANSIBLE_CORE_SPEC='$(INSTALL_CHECK_ANSIBLE_CORE)' INSTALL_CHECK_DIR=$(CACHE)/install-check PYTHON=$(PYTHON) \
		HARNESS_PYTHON=$(VENV_BIN)/python tests/install/install-check.sh $$(ls $(BUILD)/zookeeper-migration-*.tar.gz)

# Every supported ansible-core (meta/runtime.yml: 2.16 and newer): for each,
# a venv under .cache/matrix/<version> with that ansible-core and what the
# unit tests need, then that version's `ansible-test sanity` (on the copy
# make sanity makes, no ignore files) and the unit tests. `make test` covers
# the newest through .venv. Runs every version, then fails if any failed.
ANSIBLE_CORE_VERSIONS ?= 2.16 2.17 2.18 2.19
MATRIX_DIR := $(CACHE)/matrix
MATRIX_VERSION ?=
MATRIX_VENV := $(MATRIX_DIR)/$(MATRIX_VERSION)/venv
# The unit tests' own tools, with the bounds requirements/test.txt gives them.
MATRIX_TEST_TOOLS := pytest pytest-timeout hypothesis
space := $(subst ,, )
ifneq ($(filter matrix-version,$(MAKECMDGOALS)),)
ifeq ($(MATRIX_VERSION),)
$(error matrix-version: set MATRIX_VERSION, e.g. make matrix-version MATRIX_VERSION=2.16)
endif
endif

matrix: apt-packages collection-path
	@failed=(); summary=(); started_all=$$(date +%s); \
	for version in $(ANSIBLE_CORE_VERSIONS); do \
		echo; echo "==================== matrix: ansible-core $$version ===================="; \
		started=$$(date +%s); \
		if $(MAKE) --no-print-directory matrix-version MATRIX_VERSION=$$version; then result=passed; else result=FAILED; failed+=("$$version"); fi; \
		summary+=("$$(printf '  ansible-core %-6s %-7s %6s s' "$$version" "$$result" "$$(( $$(date +%s) - started ))")"); \
	done; \
	echo; echo "==================== matrix: ansible-core versions ===================="; \
	printf '%s\n' "$${summary[@]}"; \
	printf '  %-27s %6s s\n' total "$$(( $$(date +%s) - started_all ))"; \
	if (( $${#failed[@]} )); then echo "matrix: FAILED for ansible-core $${failed[*]}"; exit 1; fi; \
	echo "matrix: passed for ansible-core $(ANSIBLE_CORE_VERSIONS)"

# One version of the matrix: make matrix-version MATRIX_VERSION=2.16
matrix-version: $(MATRIX_DIR)/$(MATRIX_VERSION)/installed collection-path
	@$(MATRIX_VENV)/bin/python tests/utils/install-pip-bootstrap.py tests/utils/get_pip_offline.py
	$(copy_for_sanity)
	@$(MATRIX_VENV)/bin/ansible-test --version
	@started=$$(date +%s); \
	(cd $(SANITY_DIR) && $(MATRIX_VENV)/bin/ansible-test sanity --venv --python $(SANITY_PYTHON) $(SANITY_ARGS)); \
	echo "matrix: ansible-core $(MATRIX_VERSION): sanity passed in $$(( $$(date +%s) - started )) s"
	@started=$$(date +%s); \
	PATH=$(MATRIX_VENV)/bin:$$PATH $(COLLECTION_ENV) $(MATRIX_VENV)/bin/pytest -m 'not bench' tests/unit; \
	echo "matrix: ansible-core $(MATRIX_VERSION): unit tests passed in $$(( $$(date +%s) - started )) s"

# The venv of one version: ansible-core <version>.* within requirements/controller.txt's range,
# requirements/daemon.txt (kazoo, prometheus-client, PyYAML) and the test tools. Re-installed
# when a requirements file changes.
$(MATRIX_DIR)/%/installed: $(REQUIREMENTS) | apt-packages
	@echo "matrix: venv for ansible-core $* ($(MATRIX_DIR)/$*/venv)"
	@[[ -x $(MATRIX_DIR)/$*/venv/bin/python ]] || $(PYTHON) -m venv $(MATRIX_DIR)/$*/venv
	@{ echo '-r $(CURDIR)/requirements/controller.txt'; echo '-r $(CURDIR)/requirements/daemon.txt'; \
	   grep -E '^($(subst $(space),|,$(MATRIX_TEST_TOOLS)))[<>=~ ]' requirements/test.txt; } > $(MATRIX_DIR)/$*/requirements.txt
	@echo 'ansible-core==$*.*' > $(MATRIX_DIR)/$*/constraints.txt
	$(MATRIX_DIR)/$*/venv/bin/python -m pip install --disable-pip-version-check -q \
		-r $(MATRIX_DIR)/$*/requirements.txt -c $(MATRIX_DIR)/$*/constraints.txt
	@$(MATRIX_DIR)/$*/venv/bin/python -c 'import ansible; print("matrix: ansible-core", ansible.__version__)'
	@touch $@

# ---------------------------------------------------------------- cleaning

.PHONY: clean distclean
# Stops every harness cluster recorded under .cache/ first: deleting their
# state would leave their servers running with nothing to stop them.
clean:
	if [[ -x $(VENV_BIN)/python && -f $(CACHE)/clusters/state.json ]]; then \
		$(VENV_ENV) $(COLLECTION_ENV) $(VENV_BIN)/python tests/harness/zkcli.py down || true; \
	fi
	@# Running test hosts keep overlay mounts under .cache/hosts: stop them first.
	if [[ -x $(VENV_BIN)/python && -d $(CACHE)/hosts ]]; then \
		$(VENV_BIN)/python tests/harness/hosts.py down || true; \
	fi
	rm -rf $(BUILD) $(CACHE) tests/output .pytest_cache .ansible
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
