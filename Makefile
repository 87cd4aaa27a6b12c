# The two entry points of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PS := $(BIN)/policysync

.PHONY: demo test lint typecheck workflows unit schemas callers bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-installs only when pyproject.toml or the lock changes. The dependencies come first,
# at the versions of requirements/runtime.txt with their hashes, as the composite action
# installs them: the tests run against what users get. An editable install has no
# bytecode (pip compiles only what it copies), and with PYTHONDONTWRITEBYTECODE set none
# is ever written: every command would compile policysync again (~50 ms of CPU).
# compileall writes it.
LOCK := requirements/runtime.txt

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet -e '.[demo,emulator]'
	$(BIN)/python -m compileall -q policysync
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

DEMO_DIR := .policysync/demo

# The demo's out-of-band change: a role added to acme with the official stytch SDK, as
# someone in Stytch's dashboard would, outside git.
define OUT_OF_BAND
import os, stytch
from stytch.b2b.models.rbac import PolicyRole, PolicyRolePermission
sdk = stytch.B2BClient(project_id=os.environ["STYTCH_PROJECT_ID"],
                       secret=os.environ["STYTCH_SECRET"],
                       environment=os.environ["STYTCH_BASE_URL"])
acme = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
policy = sdk.rbac.organizations.get_org_policy(organization_id=acme).org_policy
policy.roles = [*(policy.roles or []), PolicyRole(
    role_id="breakglass-admin", description="Added in the dashboard during an incident",
    permissions=[PolicyRolePermission(resource_id="invoices", actions=["*"])])]
sdk.rbac.organizations.set_org_policy(organization_id=acme, org_policy=policy)
print("the stytch SDK added role breakglass-admin to acme, outside git")
endef
export OUT_OF_BAND

# The demo's template change: one edit of templates/finance.json (the path is argv[1]).
define TEMPLATE_CHANGE
import json, sys
template = json.load(open(sys.argv[1]))
for permission in template["roles"][0]["permissions"]:
    if permission["resource_id"] == "reports":
        permission["actions"].append("export")
json.dump(template, open(sys.argv[1], "w"), indent=2)
endef
export TEMPLATE_CHANGE

# Who held the roles a journal entry's write deleted, one line each (the path is argv[1]).
define HOLDERS
import json, sys
for held in json.load(open(sys.argv[1]))["holders"]:
    for h in held["holders"]:
        print(f"  {held['role_id']}: {h['kind']} {h['id']}" + (f" ({h['detail']})" if h["detail"] else ""))
endef
export HOLDERS

demo: $(VENV)/.installed
	@echo "== 1. policysync validate policies    (the sample policies)"
	@$(PS) validate policies
	@echo
	@echo "== 2. policysync test    (what members may do, asserted in policies/tests/, checked offline)"
	@$(PS) test
	@echo
	@echo "== 3. policysync validate tests/golden/validate/sample-broken/policies    (a broken copy of them)"
	@$(PS) validate tests/golden/validate/sample-broken/policies; status=$$?; \
	  echo "exit code $$status: the broken copy is rejected, as intended"; test $$status -eq 1
	@echo
	@echo "== 4. policysync plan --out    (against the bundled emulator, seeded with policies/emulator-seed.json)"
	@mkdir -p $(DEMO_DIR); \
	  env -u STYTCH_PROJECT_ID -u STYTCH_SECRET -u STYTCH_BASE_URL \
	    $(PS) emulator --port 0 --seed policies/emulator-seed.json > $(DEMO_DIR)/emulator.out 2>&1 & \
	  pid=$$!; trap 'kill $$pid 2>/dev/null' EXIT; \
	  for i in $$(seq 200); do grep -q "STYTCH_SECRET=" $(DEMO_DIR)/emulator.out && break; sleep 0.1; done; \
	  export $$(grep "^  STYTCH_" $(DEMO_DIR)/emulator.out | tr -d ' '); \
	  echo "(emulator at $$STYTCH_BASE_URL)"; \
	  $(PS) plan --detailed-exitcode --out $(DEMO_DIR)/plan.json; status=$$?; \
	  echo "exit code $$status: 2 means changes are pending, as the seed intends"; test $$status -eq 2 || exit 1; \
	  echo; echo "== 5. policysync apply $(DEMO_DIR)/plan.json --allow-delete    (initech's legacy-admin is still held by members)"; \
	  $(PS) apply $(DEMO_DIR)/plan.json --allow-delete --journal $(DEMO_DIR)/journal > $(DEMO_DIR)/refused.out 2>&1; status=$$?; \
	  grep -A 3 "^error:" $(DEMO_DIR)/refused.out; \
	  echo "exit code $$status: the deletion of a role in use is held back, nothing was written"; test $$status -eq 1 || exit 1; \
	  echo; echo "== 6. policysync apply $(DEMO_DIR)/plan.json --allow-delete --allow-delete-in-use    (the reviewed plan, journaled)"; \
	  $(PS) apply $(DEMO_DIR)/plan.json --allow-delete --allow-delete-in-use --journal $(DEMO_DIR)/journal || exit 1; \
	  echo "(the journal keeps who depended on legacy-admin, for rollback to give it back to its direct holders:)"; \
	  entry=$$(ls -t $(DEMO_DIR)/journal/*/organization-test-5b1f3c9e*.json | head -1); \
	  $(BIN)/python -c "$$HOLDERS" "$$entry" || exit 1; \
	  echo; echo "== 7. policysync plan --detailed-exitcode    (again: live now matches the files)"; \
	  $(PS) plan --detailed-exitcode; status=$$?; \
	  echo "exit code $$status: 0 means no changes"; test $$status -eq 0 || exit 1; \
	  echo; echo "== 8. policysync drift    (what a nightly job runs)"; \
	  $(PS) drift; status=$$?; \
	  echo "exit code $$status: 0 means no drift"; test $$status -eq 0 || exit 1; \
	  echo; echo "== 9. a template change: plan a copy in which templates/finance.json also grants reports:export"; \
	  rm -rf $(DEMO_DIR)/template-change && cp -R policies $(DEMO_DIR)/template-change && \
	  $(BIN)/python -c "$$TEMPLATE_CHANGE" $(DEMO_DIR)/template-change/templates/finance.json || exit 1; \
	  $(PS) plan --policies $(DEMO_DIR)/template-change --detailed-exitcode; status=$$?; \
	  echo "exit code $$status: one template edit, planned in every organization using it"; test $$status -eq 2 || exit 1; \
	  echo; echo "== 10. an out-of-band change, with the official stytch SDK"; \
	  $(BIN)/python -W ignore -c "$$OUT_OF_BAND" || exit 1; \
	  echo; echo "== 11. policysync drift    (again)"; \
	  $(PS) drift; status=$$?; \
	  echo "exit code $$status: 2 means drift found"; test $$status -eq 2 || exit 1; \
	  echo; echo "== 12. policysync export --org acme    (adopt live into a copy of the files: $(DEMO_DIR)/adopted)"; \
	  rm -rf $(DEMO_DIR)/adopted && cp -R policies $(DEMO_DIR)/adopted && \
	  $(PS) export --org acme --policies $(DEMO_DIR)/adopted || exit 1; \
	  grep -A 7 '"breakglass-admin"' $(DEMO_DIR)/adopted/orgs/acme.json; \
	  echo; echo "== 13. policysync drift --policies $(DEMO_DIR)/adopted    (the adopted files match live)"; \
	  $(PS) drift --policies $(DEMO_DIR)/adopted; status=$$?; \
	  echo "exit code $$status: 0, no drift; commit the adopted files (or use export --branch NAME)"; \
	  test $$status -eq 0
	@echo
	@echo "== 14. ZenML Pro: the sample in examples/zenml/ (provider = \"zenml\") against the bundled ZenML Pro emulator"
	@mkdir -p $(DEMO_DIR); rm -rf $(DEMO_DIR)/zenml-journal; demo=$$(pwd)/$(DEMO_DIR); ps=$$(pwd)/$(PS); cd examples/zenml; \
	  env -u ZENML_PRO_API_KEY -u ZENML_PRO_API_URL \
	    $$ps emulator --provider zenml --port 0 --seed emulator-seed.json > $$demo/zenml-emulator.out 2>&1 & \
	  pid=$$!; trap 'kill $$pid 2>/dev/null' EXIT; \
	  for i in $$(seq 200); do grep -q "ZENML_PRO_API_KEY=" $$demo/zenml-emulator.out && break; sleep 0.1; done; \
	  export $$(grep "^  ZENML_PRO_" $$demo/zenml-emulator.out | tr -d ' '); \
	  echo "(emulator at $$ZENML_PRO_API_URL)"; \
	  $$ps validate || exit 1; \
	  echo; echo "== 15. policysync plan --out    (ZenML Pro: roles by level:name; the role to delete is held by a user)"; \
	  $$ps plan --detailed-exitcode --out $$demo/zenml-plan.json; status=$$?; \
	  echo "exit code $$status: 2 means changes are pending"; test $$status -eq 2 || exit 1; \
	  echo; echo "== 16. policysync apply --allow-delete --allow-delete-in-use    (one role at a time, each operation journaled; the holders of the deleted role too)"; \
	  $$ps apply $$demo/zenml-plan.json --allow-delete --allow-delete-in-use --journal $$demo/zenml-journal || exit 1; \
	  echo "(the journal keeps who held the deleted role, for rollback to give it back:)"; \
	  grep -h -A 10 '"holders": \[$$' $$demo/zenml-journal/*/*.json | head -12; \
	  echo; echo "== 17. policysync drift    (ZenML Pro)"; \
	  $$ps drift --all-orgs; status=$$?; \
	  echo "exit code $$status: 0 means no drift"; test $$status -eq 0

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check policysync tests bench
	$(BIN)/ruff format --check policysync tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict policysync

# The GitHub files: actionlint (with ShellCheck on every `run:` script) and zizmor,
# offline (no GitHub API), every audit (the auditor persona, which includes
# secrets-outside-env), with the ignores of .github/zizmor.yml.
workflows: $(VENV)/.installed-dev
	$(BIN)/actionlint -shellcheck $(BIN)/shellcheck -pyflakes= .github/workflows/*.yml
	$(BIN)/zizmor --offline --no-progress --quiet --persona auditor --config .github/zizmor.yml \
	  .github/workflows action.yml .pre-commit-hooks.yaml

unit: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

test: lint typecheck workflows unit

# Regenerates schemas/*.schema.json from the models (a test fails when they are stale).
schemas: $(VENV)/.installed
	$(BIN)/python -m policysync.schemas --write

# Writes this repository's callers (.github/workflows/policy-*.yml) again from the
# templates in policysync/templates/, which `policysync init` writes a policy repository's
# callers from (a test fails when they are stale).
callers: $(VENV)/.installed
	$(BIN)/python -m policysync.scaffold --write

# Every benchmark runs even when one misses its targets; any miss fails the target. Each
# prints its figures and writes them to bench/out/NAME.json.
BENCHES := validate emulator plan apply

bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m compileall -q policysync  # as installed from a wheel: with bytecode
	@status=0; verdicts=""; start=$$(date +%s); \
	  for name in $(BENCHES); do \
	    echo; echo "== bench/$${name}_bench.py"; \
	    $(BIN)/python bench/$${name}_bench.py --json bench/out/$$name.json; code=$$?; \
	    case $$code in 0) verdict=PASS;; 1) verdict=MISS;; *) verdict="FAILED TO RUN";; esac; \
	    test $$code -eq 0 || status=1; verdicts="$$verdicts $$name: $$verdict;"; \
	  done; \
	  echo; echo "make bench:$$verdicts $$(( $$(date +%s) - start )) s in all"; \
	  exit $$status

# The locks of the composite action and the release workflow, with the sha256 of every
# file of each pinned version (all platforms, Python 3.11 and newer). Keeps the pinned
# versions that still satisfy pyproject.toml; `make lock UPGRADE=--upgrade` takes the
# newest. The tests check that the lock covers pyproject.toml's dependencies and that
# this virtual environment runs the locked versions.
lock: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[dev,lock]'
	$(BIN)/uv pip compile pyproject.toml $(UV_LOCK_FLAGS) -o requirements/runtime.txt
	$(BIN)/uv pip compile requirements/build.in $(UV_LOCK_FLAGS) -o requirements/build.txt

UV_LOCK_FLAGS = --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(UPGRADE)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/out
