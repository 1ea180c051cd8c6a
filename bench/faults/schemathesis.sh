#!/usr/bin/env bash
# Property-based check of /api/v1 against its own OpenAPI description: schemathesis (PyPI)
# generates valid and invalid requests from /api/v1/openapi.json and checks every answer.
# Fails on any 5xx, any answer whose status or body the description does not allow (the error
# shape of CONTRACT.md §4 included), any schema-invalid request the server accepts, any call that
# works without credentials, and a wrong answer to a method a path does not take (405 + Allow).
#
#   bash bench/faults/schemathesis.sh            # CI: 30 s of testing, under a minute in all
#   SCHEMATHESIS_MAX_TIME=600 SCHEMATHESIS_EXAMPLES=500 bash bench/faults/schemathesis.sh
#
# The server is `tagcast serve` in demo mode (its in-process mock WeChat, the sample playbook
# and seeded followers) on a fresh database, with an API token; everything stays on loopback.
#
# Environment (all optional):
#   TAGCAST_BIN=target/debug/tagcast  binary to run (built with `cargo build` when missing; under
#                                     $CARGO_TARGET_DIR when that is set)
#   SCHEMATHESIS_MAX_TIME=30          seconds of testing
#   SCHEMATHESIS_EXAMPLES=25          most generated cases per operation and phase
#   SCHEMATHESIS_SEED=                a seed, to repeat a run
#   SCHEMATHESIS_CHECKS=all, SCHEMATHESIS_EXCLUDE_CHECKS=positive_data_acceptance
#   SCHEMATHESIS_REPORT_DIR=          keep schemathesis's reports (junit, ndjson) here
#   SCHEMATHESIS_VENV=target/schemathesis-venv  where schemathesis is installed
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

BIN=${TAGCAST_BIN:-${CARGO_TARGET_DIR:-target}/debug/tagcast}
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-30}
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-25}
# Every check but positive_data_acceptance: a schema-valid body may still be refused for what it
# means (an empty tag path, an unknown segment, `{"all": false}`), and those refusals are described.
CHECKS=${SCHEMATHESIS_CHECKS:-all}
EXCLUDE=${SCHEMATHESIS_EXCLUDE_CHECKS:-positive_data_acceptance}
API_TOKEN=schemathesis-token-0123456789
DB=tagcast_schemathesis_$$
PSQL="psql -h 127.0.0.1 -p 5432 -U postgres -X -q -At"

# schemathesis lives in a virtualenv of its own under target/. CPython 3.11.7 crashes inside
# Hypothesis ("AST constructor recursion depth mismatch") on this schema, so the newest Python
# found is used: python3.13 or python3.12 on PATH or under pyenv, else python3.
VENV=${SCHEMATHESIS_VENV:-$ROOT/target/schemathesis-venv}
if [ ! -x "$VENV/bin/schemathesis" ]; then
    PYTHON=
    for candidate in python3.13 python3.12 \
        "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[23]*/bin/python3.1[23] 2>/dev/null | tail -n1)" python3; do
        if [ -n "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
            PYTHON=$candidate
            break
        fi
    done
    echo "installing schemathesis (pip) into $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check schemathesis >/dev/null
fi
[ -x "$BIN" ] || cargo build --quiet --bin tagcast

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    $PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# An empty working directory, so no developer's .env leaks in.
(cd "$WORK" && exec env -i PATH="$PATH" \
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
    TAGCAST_BIND="$ADDR" \
    TAGCAST_API_TOKEN="$API_TOKEN" \
    RUST_LOG=warn \
    "$BIN" serve >"$WORK/server.log" 2>&1) &
SERVER_PID=$!

for _ in $(seq 1 60); do
    curl -fsS "http://$ADDR/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "tagcast exited:"; cat "$WORK/server.log"; exit 1; }
    sleep 0.5
done
curl -fsS "http://$ADDR/readyz" >/dev/null || { echo "tagcast not ready:"; cat "$WORK/server.log"; exit 1; }

ARGS=(
    run "http://$ADDR/api/v1/openapi.json"
    --url "http://$ADDR"
    -H "Authorization: Bearer $API_TOKEN"
    --checks "$CHECKS"
    --exclude-checks "$EXCLUDE"
    --max-time "$MAX_TIME"
    --max-examples "$EXAMPLES"
    # A campaign preview makes up to 10 WeChat calls paced at one a second while the caller waits.
    --request-timeout 30
    --workers 2
    --no-color
)
[ -n "${SCHEMATHESIS_SEED:-}" ] && ARGS+=(--seed "$SCHEMATHESIS_SEED")
[ -n "${SCHEMATHESIS_REPORT_DIR:-}" ] && ARGS+=(--report junit,ndjson --report-dir "$(realpath -m "$SCHEMATHESIS_REPORT_DIR")")

status=0
# From the work directory, so schemathesis's cache (.schemathesis/) goes with it.
(cd "$WORK" && "$VENV/bin/schemathesis" "${ARGS[@]}") || status=$?
# A panic or an error the server logged is worth seeing even when every answer passed.
# (actix-http's own "request parse error" lines are the malformed requests schemathesis sends.)
if grep -E "panicked|ERROR" "$WORK/server.log" | grep -v "request parse error" >/dev/null; then
    echo "--- tagcast logged errors:"
    grep -E "panicked|ERROR" "$WORK/server.log" | grep -v "request parse error" | head -20
fi
exit $status
