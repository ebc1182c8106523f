# DAWN: `make run` serves the embedded shape, `make test` runs the whole suite, `make bench` measures.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# the scaled half of the suite runs against these unless the environment names others
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/test)
TEST_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/0)

.PHONY: venv migrate static run test test-embedded test-scaled bench bench-workers clean

$(BIN)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed

migrate: venv
	$(BIN)/python manage.py migrate --noinput

# hashed, compressed copies of the admin's, the browsable API's and the API docs' files, served by whitenoise
static: venv
	$(BIN)/python manage.py collectstatic --noinput -v 0

run: migrate static
	$(BIN)/python manage.py runtick --host $(HOST) --port $(PORT)

test: test-embedded test-scaled

# embedded shape: SQLite and the in-memory channel layer, whatever the environment says
test-embedded: venv
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python -m pytest -m "not scaled" -q

# scaled shape: real PostgreSQL and Redis (the tests fail, not skip, when they do not answer)
test-scaled: venv
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DAWN_REQUIRE_SCALED=1 \
		$(BIN)/python -m pytest -m "scaled or both_shapes" -q

bench: venv
	$(BIN)/python -m bench

# the stream through one uvicorn, then one Daphne worker, fed over Redis
bench-workers: venv
	REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m bench workers

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
