# Set-up is part of each target: a fresh clone needs only python3 (3.11+) and pip.
PYTHON ?= python3
VENV := .venv
PLUGINS := $(sort $(wildcard plugins/msabench-*))
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint leaderboards leaderboards-check reproduce check-plugins verify site site-test

# torch stays the CPU build 2.13.0 (constraints.txt; this machine's pip finds its CPU wheel locally, elsewhere
# add --extra-index-url https://download.pytorch.org/whl/cpu); unpinned, pip pulls a newer CUDA torch of several GB.
# The stamp names the set of plugin folders: adding or deleting one rebuilds .venv, so a deleted plugin is not left
# installed (its entry point would then fail to load).
INSTALLED := $(VENV)/.installed-$(shell echo $(PLUGINS) | cksum | cut -d' ' -f1)

# leaderboards/plugins.txt: plugins published elsewhere (PyPI, git URLs) whose results are committed, one pip
# requirement a line; they are installed beside the folders under plugins/.
$(INSTALLED): pyproject.toml constraints.txt $(PLUGINS:%=%/pyproject.toml) leaderboards/plugins.txt
	if ls $(VENV)/.installed* 2>/dev/null | grep -qv '^$(INSTALLED)$$'; then rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev,sweep,efficientnet]' $(PLUGINS:%=-e %) \
		-r leaderboards/plugins.txt
	touch $@

# The demo works in ./demo (results/ and leaderboards/ there), away from the committed leaderboards/.
demo: $(INSTALLED)
	mkdir -p demo && cd demo && ../$(VENV)/bin/msabench run --method tfn --dataset synthetic-mosi --seeds 1111

# Style first (ruff's lint rules and its formatter, mypy on the host), then the suite. One torch thread: the tests' tiny models run
# faster without thread hand-offs (and much faster on a busy machine).
test: lint
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/actionlint -no-color .github/workflows/*.yml

leaderboards: $(INSTALLED)
	$(VENV)/bin/msabench leaderboard --results leaderboards/results --out leaderboards

# Fails when a committed page is not what the committed results render (CI's guard on submissions).
leaderboards-check: $(INSTALLED)
	$(VENV)/bin/msabench leaderboard --check --results leaderboards/results --out leaderboards

# The conformance kit on every plugin: the folders under plugins/ and those leaderboards/plugins.txt names.
check-plugins: $(INSTALLED)
	set -e; for plugin in $(notdir $(PLUGINS)) $$(sed -e 's/#.*//' -e 's/[][<>=!~;@ ].*//' leaderboards/plugins.txt); do \
		echo "== msabench check $$plugin"; OMP_NUM_THREADS=1 $(VENV)/bin/msabench check $$plugin; \
	done

# msabench verify on the committed results; RERUN=N also trains N of them again.
RERUN ?= 0
verify: $(INSTALLED)
	OMP_NUM_THREADS=1 $(VENV)/bin/msabench verify leaderboards/results --rerun $(RERUN)

# msabench site: the committed leaderboards as a static site in build/site.
site: $(INSTALLED)
	$(VENV)/bin/msabench site --results leaderboards/results --out build/site

# The site in headless Chromium (Debian's chromium package): every page, sorting, no JavaScript; screenshots in
# build/site-screenshots.
site-test: site
	MSABENCH_SITE=build/site MSABENCH_SCREENSHOTS=build/site-screenshots $(VENV)/bin/python -m pytest \
		tests/test_site_browser.py

# Re-run every (method, dataset[, extra msabench run flags]) line of leaderboards/runs.txt over the protocol's
# five seeds (a multi-stage method runs its stages too, and they keep their checkpoints), one unit per CPU core
# (WORKERS=N to choose; REPRODUCE_FLAGS="--address auto" on a Ray cluster node). Finished units are skipped, so after
# an interruption the same command trains only what is left.
WORKERS ?=
REPRODUCE_FLAGS ?=
reproduce: $(INSTALLED)
	OMP_NUM_THREADS=1 $(VENV)/bin/msabench reproduce leaderboards/runs.txt --no-checkpoints \
		--results leaderboards/results --leaderboards leaderboards $(if $(WORKERS),--workers $(WORKERS)) $(REPRODUCE_FLAGS)
