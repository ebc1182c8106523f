# DAWN: `make run` serves the embedded shape, `make test` runs the whole suite, `make bench` measures.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# the scaled half of the suite runs against these unless the environment names others
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/test)
TEST_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/0)

.PHONY: venv chromium migrate static run test lint test-embedded test-scaled test-browser bench bench-workers soak assets screenshot clean

$(BIN)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed

# The browser tests drive Debian's chromium through Playwright, which cannot download a browser here:
# installed with apt-get when it is missing (as root; otherwise the command to run is printed).
CHROMIUM := /usr/bin/chromium
chromium:
	@[ -x $(CHROMIUM) ] || { \
		[ "$$(id -u)" = 0 ] || { echo "$(CHROMIUM) is missing: sudo apt-get install chromium" >&2; exit 1; }; \
		echo "chromium is missing: installing Debian's"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

migrate: venv
	$(BIN)/python manage.py migrate --noinput

# hashed, compressed copies of the admin's, the browsable API's and the API docs' files, served by whitenoise
static: venv
	$(BIN)/python manage.py collectstatic --noinput -v 0

# local play: writes need no user, and only ever for loopback clients (see the README: who may write)
run: migrate static
	DAWN_OPEN_WRITES=1 $(BIN)/python manage.py runtick --host $(HOST) --port $(PORT)

test: lint test-embedded test-scaled

# the layer contract (.importlinter): imports run only downward
lint: venv
	$(BIN)/lint-imports

# embedded shape: SQLite and the in-memory channel layer, whatever the environment says; in TEST_WORKERS
# processes (pytest-xdist), a test file to each at a time (most tests wait on real servers, not the CPU)
TEST_WORKERS ?= 2
test-embedded: venv chromium
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python -m pytest -m "not scaled" -q -n $(TEST_WORKERS) --dist loadfile

# scaled shape: real PostgreSQL and Redis (the tests fail, not skip, when they do not answer)
test-scaled: venv
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DAWN_REQUIRE_SCALED=1 \
		$(BIN)/python -m pytest -m "scaled or both_shapes" -q

# the dashboard in a real headless browser (Debian's chromium, driven by Playwright; no browser download)
test-browser: venv chromium
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python -m pytest -q tests/dawn_site/test_dashboard.py

# docs/dashboard.png for the README, taken by the same browser against a fresh DAWN
screenshot: venv chromium
	env -u DATABASE_URL -u REDIS_URL DAWN_SCREENSHOT=docs/dashboard.png $(BIN)/python -m pytest -q \
		tests/dawn_site/test_dashboard.py -k screenshot

# Refresh the vendored browser code from the npm registry, as package-lock.json pins it. The result is
# committed, so `make run` and the tests need no npm.
VENDOR := dawn_site/static/dawn/vendor
assets:
	npm ci --no-audit --no-fund --ignore-scripts
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/msgpack $(VENDOR)/uplot
	cd node_modules/@msgpack/msgpack/dist.esm && find . -name '*.mjs' -exec cp --parents {} $(CURDIR)/$(VENDOR)/msgpack/ \;
	find $(VENDOR)/msgpack -name '*.mjs' -exec sed -i '/^\/\/# sourceMappingURL=/d' {} +
	cp node_modules/@msgpack/msgpack/LICENSE $(VENDOR)/msgpack/LICENSE
	cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css $(VENDOR)/uplot/
	cp node_modules/uplot/LICENSE $(VENDOR)/uplot/LICENSE
	for p in @msgpack/msgpack uplot; do node -p "const m = require('./node_modules/$$p/package.json'); \
		[m.name, m.version, m.license, m.homepage].join(' ')"; done > $(VENDOR)/VERSIONS

bench: venv
	$(BIN)/python -m bench

# the stream through one uvicorn, then one Daphne worker, fed over Redis
bench-workers: venv
	REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m bench workers

# `make run`'s DAWN under a few hundred clients for SOAK_MINUTES, with a kill -9 of runtick in the middle
SOAK_MINUTES ?= 30
soak: venv
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
