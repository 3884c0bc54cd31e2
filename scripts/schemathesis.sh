#!/usr/bin/env bash
# Property-based API testing of both OpenAPI contracts with Schemathesis, every check enabled:
#
#   scripts/schemathesis.sh
#
# It installs Schemathesis (pinned, from PyPI) into .local/schemathesis-venv when missing, uses the
# MongoDB and RabbitMQ given by the environment (CHAT3_TEST_MONGODB_URI, RABBITMQ_URL) or starts
# its own (scripts/services.sh; under scripts/test.sh, its own SecantusDB), builds the debug
# binaries if needed, starts chat3-api, update-worker and bff on free ports with their own
# database, exchange and queue names, creates a tenant, keys and a dialog for the tests to hit,
# and then runs:
#
#   1. api            openapi/openapi.yaml without the `tenants` tag, with the tenant key
#   2. api-operator   openapi/openapi.yaml, tag `tenants` (tenants and API keys), operator key
#   3. bff            openapi/bff.yaml (no key: its routes are public)
#
# each with `--checks all`, the phases examples, coverage, fuzzing and stateful, a bounded number
# of examples per operation and a time budget (about 4 minutes in all when the binaries are
# built). It prints a summary (every failing check per operation) and exits non-zero when any run
# reports a failure or an error. Logs: .local/logs/schemathesis-*.log (servers) and
# .local/logs/schemathesis-run-*.log (runs); configs and JUnit reports: .local/schemathesis/<run>/.
#
# Settings (environment):
#   CHAT3_SKIP_SCHEMATHESIS=1        do nothing (exit 0)
#   SCHEMATHESIS_VERSION             pip version pin                        (default 4.32.5)
#   CHAT3_SCHEMATHESIS_VENV          venv location              (default .local/schemathesis-venv)
#   CHAT3_SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase             (default 30)
#   CHAT3_SCHEMATHESIS_MAX_TIME      seconds for run 1; runs 2 and 3 get 2/5 of it (default 100)
#   CHAT3_SCHEMATHESIS_SEED          Hypothesis seed, to reproduce a run      (default: random)
#   CHAT3_SCHEMATHESIS_WORKERS       concurrent Schemathesis workers                 (default 1)
#   CHAT3_SCHEMATHESIS_MAX_RESPONSE_TIME  seconds a response may take                (default 5)
#   CHAT3_SCHEMATHESIS_ARGS          more `schemathesis run` options for every run, e.g.
#                                    `--report har,ndjson` (written to .local/schemathesis/<run>/<name>/)
#   CHAT3_SCHEMATHESIS_NO_BUILD=1    use the binaries already in target/debug
#
# Works without a terminal (CI=true, no stdin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

if [ "${CHAT3_SKIP_SCHEMATHESIS:-0}" = 1 ]; then
  echo "schemathesis: skipped (CHAT3_SKIP_SCHEMATHESIS=1)"
  exit 0
fi

# shellcheck source=scripts/services.sh
source scripts/services.sh
# scripts/test.sh exports the pid of its SecantusDB: never stop what this script did not start.
CHAT3_SECANTUS_PID=""
CHAT3_RABBITMQ_STARTED_BY_US=0

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
# pika: only to delete this run's exchanges and queues from RabbitMQ afterwards.
PIKA_VERSION="1.4.4"
VENV="${CHAT3_SCHEMATHESIS_VENV:-$ROOT/.local/schemathesis-venv}"
MAX_EXAMPLES="${CHAT3_SCHEMATHESIS_MAX_EXAMPLES:-30}"
MAX_TIME="${CHAT3_SCHEMATHESIS_MAX_TIME:-100}"
# One worker: with several, Hypothesis' lambda introspection races in CPython 3.11's `ast.parse`
# ("AST constructor recursion depth mismatch") and an operation ends in a runtime error.
WORKERS="${CHAT3_SCHEMATHESIS_WORKERS:-1}"
SEED="${CHAT3_SCHEMATHESIS_SEED:-}"
# Gives the `max_response_time` check a limit (without one it checks nothing); generous, for debug
# builds on a small machine.
MAX_RESPONSE_TIME="${CHAT3_SCHEMATHESIS_MAX_RESPONSE_TIME:-5}"
LOG_DIR="$ROOT/.local/logs"
BIN_DIR="$ROOT/target/debug"

# Names unique to this run, so that it can share the servers with tests and other runs.
RUN_ID="$(date +%s)$$"
RUN_ID="$(python3 -c 'import sys; print(format(int(sys.argv[1]), "x")[-10:])' "$RUN_ID")"
TENANT="st_$RUN_ID"
API_DB="chat3_st_$RUN_ID"
BFF_DB="chat3_bff_st_$RUN_ID"
EVENTS_EXCHANGE="chat3_events_st_$RUN_ID"
UPDATES_EXCHANGE="chat3_updates_st_$RUN_ID"
WORKER_QUEUE="chat3_update_worker_st_$RUN_ID"
REPORT_DIR="$ROOT/.local/schemathesis/$RUN_ID"

PIDS=()
NAMES=()
STARTED_STORAGE=0

stop_everything() {
  local rc=$?
  trap - EXIT INT TERM
  chat3_stop_started
  cleanup_storage_and_broker || true
  chat3_stop_all
  exit "$rc"
}
trap stop_everything EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Drop this run's databases and delete its exchanges and queues (best effort; an in-memory
# SecantusDB that we started goes away by itself).
cleanup_storage_and_broker() {
  [ -n "${MONGODB_URI:-}" ] || return 0
  if [ "$STARTED_STORAGE" != 1 ] && [ -x "$CHAT3_SECANTUS_VENV/bin/python" ]; then
    "$CHAT3_SECANTUS_VENV/bin/python" - "$MONGODB_URI" "$API_DB" "$BFF_DB" <<'PY' >/dev/null 2>&1 || true
import sys
from pymongo import MongoClient
client = MongoClient(sys.argv[1], serverSelectionTimeoutMS=2000)
for name in sys.argv[2:]:
    client.drop_database(name)
PY
  fi
  [ -x "$VENV/bin/python" ] || return 0
  "$VENV/bin/python" - "$RABBITMQ_URL" "$WORKER_QUEUE" "$EVENTS_EXCHANGE" "$UPDATES_EXCHANGE" <<'PY' >/dev/null 2>&1 || true
import sys
import pika
url, queue, *exchanges = sys.argv[1:]
params = pika.URLParameters(url)
params.socket_timeout = 5
connection = pika.BlockingConnection(params)
for name in (queue, queue + ".dlq"):
    channel = connection.channel()
    try:
        channel.queue_delete(name)
    except Exception:
        pass
for name in exchanges + [queue + ".dlx"]:
    channel = connection.channel()
    try:
        channel.exchange_delete(name)
    except Exception:
        pass
connection.close()
PY
}

# ---------------------------------------------------------------------------- schemathesis venv
ensure_venv() {
  local py="$VENV/bin/python" have="" pika=""
  if [ -x "$py" ]; then
    have="$("$py" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)"
    pika="$("$py" -c 'import importlib.metadata as m; print(m.version("pika"))' 2>/dev/null || true)"
  fi
  if [ "$have" = "$SCHEMATHESIS_VERSION" ] && [ "$pika" = "$PIKA_VERSION" ] && [ -x "$VENV/bin/schemathesis" ]; then
    return 0
  fi
  chat3_log "installing schemathesis==$SCHEMATHESIS_VERSION (and pika==$PIKA_VERSION) into ${VENV#"$ROOT"/}"
  mkdir -p "$(dirname "$VENV")"
  [ -x "$py" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" "pika==$PIKA_VERSION" </dev/null
}

# ---------------------------------------------------------------------------- services
# start NAME BINARY ARGS...: run target/debug/BINARY in the background (environment as set by the
# caller), logging to .local/logs/schemathesis-NAME.log.
start() {
  local name="$1" bin="$BIN_DIR/$2" log="$LOG_DIR/schemathesis-$1.log"
  shift 2
  [ -x "$bin" ] || chat3_die "$bin not found"
  : >"$log"
  NO_COLOR=1 "$bin" "$@" </dev/null >>"$log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
  chat3_log "started $name (pid $!, log ${log#"$ROOT"/})"
}

# wait_ready NAME URL: wait up to 60 s for URL to answer 200 while NAME's process is alive.
wait_ready() {
  local name="$1" url="$2" i pid="${PIDS[${#PIDS[@]} - 1]}"
  for ((i = 0; i < 120; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$LOG_DIR/schemathesis-$name.log" >&2 || true
      chat3_die "$name exited during startup (log: .local/logs/schemathesis-$name.log)"
    fi
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    sleep 0.5
  done
  chat3_die "$name did not answer $url within 60 s (log: .local/logs/schemathesis-$name.log)"
}

# wait_log NAME TEXT: the worker has no HTTP port; wait up to 30 s for TEXT in its log (it must
# stay alive; if the text never shows, warn and go on).
wait_log() {
  local name="$1" text="$2" i pid="${PIDS[${#PIDS[@]} - 1]}" log="$LOG_DIR/schemathesis-$1.log"
  for ((i = 0; i < 60; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$log" >&2 || true
      chat3_die "$name exited during startup (log: ${log#"$ROOT"/})"
    fi
    grep -q "$text" "$log" 2>/dev/null && return 0
    sleep 0.5
  done
  chat3_warn "$name: no \"$text\" in its log after 30 s; going on"
}

# Read one field of a JSON document on stdin (`data.key`, ...).
json_field() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    v = v[part]
print(v)' "$1"
}

# api METHOD PATH KEY [BODY]: call the API, print the body, fail unless 2xx.
api() {
  local method="$1" path="$2" key="$3" body="${4:-}" args
  args=(-sS --max-time 10 -X "$method" "$API_URL$path" -H "X-API-Key: $key" -w '\n%{http_code}')
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' -d "$body")
  local out status
  out="$(curl "${args[@]}")" || chat3_die "$method $path: curl failed"
  status="${out##*$'\n'}"
  out="${out%$'\n'*}"
  case "$status" in
    2??) printf '%s' "$out" ;;
    *) chat3_die "$method $path: HTTP $status $out" ;;
  esac
}

mkdir -p "$LOG_DIR" "$REPORT_DIR"
# Keep the reports of the last 5 runs.
find "$ROOT/.local/schemathesis" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' |
  sort -rn | tail -n +6 | cut -d' ' -f2- | xargs -r rm -rf --
ensure_venv
chat3_log "$("$VENV/bin/schemathesis" --version)"

# RabbitMQ: RABBITMQ_URL when set (a local broker is started only if it is down).
chat3_ensure_rabbitmq
export RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
if [ -n "${CHAT3_TEST_MONGODB_URI:-}" ]; then
  export MONGODB_URI="$CHAT3_TEST_MONGODB_URI"
  chat3_log "MongoDB from CHAT3_TEST_MONGODB_URI: $MONGODB_URI"
else
  STARTED_STORAGE=1
  chat3_start_secantus :memory:
  export MONGODB_URI="$CHAT3_SECANTUS_URI"
fi

if [ "${CHAT3_SCHEMATHESIS_NO_BUILD:-0}" != 1 ]; then
  chat3_log "cargo build -p chat3-api -p chat3-update-worker -p chat3-bff (debug)"
  cargo build -q -p chat3-api -p chat3-update-worker -p chat3-bff --bins
fi

API_PORT="$(chat3_free_port)"
BFF_PORT="$(chat3_free_port)"
while [ "$BFF_PORT" = "$API_PORT" ]; do BFF_PORT="$(chat3_free_port)"; done
API_URL="http://127.0.0.1:$API_PORT"
BFF_URL="http://127.0.0.1:$BFF_PORT"
ADMIN_KEY="adm_st_$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
export RUST_LOG="${RUST_LOG:-info}"
export CHAT3_LOG_FORMAT=text
export CHAT3_MONGODB_DB="$API_DB"
export CHAT3_EVENTS_EXCHANGE="$EVENTS_EXCHANGE"
export CHAT3_UPDATES_EXCHANGE="$UPDATES_EXCHANGE"

# Rate limits far above what a run sends: a 429 would only hide the answers we want to check.
CHAT3_API_BIND="127.0.0.1:$API_PORT" CHAT3_ADMIN_API_KEY="$ADMIN_KEY" \
  CHAT3_RATE_LIMIT_PER_SECOND=1000000 CHAT3_RATE_LIMIT_BURST=1000000 \
  start chat3-api chat3-api serve
wait_ready chat3-api "$API_URL/ready"
CHAT3_UPDATE_WORKER_QUEUE="$WORKER_QUEUE" start update-worker update-worker run
wait_log update-worker "consuming events"

# ---------------------------------------------------------------------------- test data
# A tenant, its key (for the runs), a second key (the one `revokeApiKey` revokes), a second
# tenant (the one `deleteTenant` deletes) and a dialog between alice and bob with a message, so
# that path parameters can name real objects.
api POST /api/tenants "$ADMIN_KEY" "{\"tenantId\":\"$TENANT\",\"name\":\"schemathesis\"}" >/dev/null
VICTIM_TENANT="${TENANT}_gone"
api POST /api/tenants "$ADMIN_KEY" "{\"tenantId\":\"$VICTIM_TENANT\"}" >/dev/null
TENANT_KEY="$(api POST "/api/tenants/$TENANT/api-keys" "$ADMIN_KEY" '{"name":"schemathesis"}' | json_field data.key)"
VICTIM_KEY_ID="$(api POST "/api/tenants/$TENANT/api-keys" "$ADMIN_KEY" '{"name":"schemathesis-revoke"}' | json_field data.keyId)"
DIALOG_ID="$(api POST /api/dialogs "$TENANT_KEY" \
  '{"members":[{"userId":"alice"},{"userId":"bob"}],"name":"schemathesis"}' | json_field data.dialogId)"
api POST "/api/dialogs/$DIALOG_ID/messages" "$TENANT_KEY" '{"senderId":"alice","content":"hello"}' >/dev/null
chat3_log "tenant $TENANT, dialog $DIALOG_ID (members alice, bob)"

CHAT3_BFF_BIND="127.0.0.1:$BFF_PORT" CHAT3_API_URL="$API_URL" CHAT3_API_KEY="$TENANT_KEY" \
  CHAT3_TENANT_ID="$TENANT" BFF_JWT_SECRET="$JWT_SECRET" BFF_SMS_PROVIDER=console \
  CHAT3_BFF_MONGODB_DB="$BFF_DB" \
  BFF_PHONE_CODES_PER_HOUR=1000000 BFF_PHONE_CODES_TOTAL_PER_HOUR=1000000 \
  BFF_IP_CODES_PER_HOUR=1000000 BFF_PHONE_VERIFY_PER_HOUR=1000000 BFF_IP_VERIFY_PER_HOUR=1000000 \
  start bff bff serve
wait_ready bff "$BFF_URL/ready"

# ---------------------------------------------------------------------------- schemathesis runs
# Generated next to the reports: one config per run (auth and fixed parameters differ), and a
# hooks module (see the comment inside).
HOOKS="$REPORT_DIR/hooks.py"
cat >"$HOOKS" <<'PY'
"""Schemathesis hooks for scripts/schemathesis.sh (generated).

`X-Idempotency-Key` means "replay the first response for this key"; the same key with another body
is answered 422 `idempotency_key_reused`, as the spec says. Generated keys are short and repeat
across test cases ("0", "00", ...), so schema-valid requests would be refused only because an
earlier, unrelated case used the same key. The schema cannot say "unique per request", so every
schema-valid key gets a suffix unique to this request (still 1-255 visible ASCII characters); keys
that break the schema are sent as generated, so their rejection is still checked.
"""

import itertools
import re
import urllib.parse
import uuid

import schemathesis
from schemathesis.core.parameters import ParameterLocation

_VALID = re.compile(r"^[!-~]{1,255}$")
_RUN = uuid.uuid4().hex[:8]
_COUNTER = itertools.count()


# `filter=` and `sort=` are a small language (chat3_core::filter) the schema can only bound in
# length: a random string within the bounds is schema-valid and still refused (400
# `invalid_filter`), which the positive checks would call a false failure. The parser is
# property-tested in the project's own tests; here a schema-valid filter becomes one the list
# accepts (its fields differ per list), and a schema-valid sort is dropped (each list sorts by
# other fields).
_FILTERS = {
    "/api/tenants": "(tenantId,exists,true)|(createdAt,gte,0)",
    "/api/dialogs/{dialogId}/members": "(userId,exists,true)|(joinedAt,gte,0)",
    "/api/users/{userId}/dialogs": "(unreadCount,gte,0)|(meta.k,exists,true)",
    "/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/statuses": "(createdAt,gte,0)",
    "/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/reactions": "(createdAt,gte,0)",
}
_FILTER = "(createdAt,gte,0)|(meta.k,exists,true)"


def _fix_list_params(case):
    query = case.query
    if not query:
        return
    value = query.get("filter")
    if isinstance(value, str) and 1 <= len(value) <= 2000:
        query["filter"] = _FILTERS.get(case.path, _FILTER)
    value = query.get("sort")
    if isinstance(value, str) and 1 <= len(value) <= 2000:
        del query["sort"]


# Path values: Schemathesis percent-encodes a generated path value for the URL and validates that
# encoded form against the schema, while the server validates the decoded one. The two agree
# except when the generated value held a literal `%XX` (a user id may hold `%`): Schemathesis
# decodes it before encoding ("%41" is sent as "A", "%1F'B" as "%1F%27B", which the server reads
# as a control character), so a case can be checked as one value and answered as another ("valid
# id refused", "invalid id accepted"). When, for a case, the encoded and the decoded value
# disagree on what its mode claims (positive: the server's value must be valid; negative: an
# invalid encoded value must not be a valid one to the server), each `%XX` in its path values
# becomes `_`: a value without `%` reads the same to both, and Schemathesis re-derives the
# case's mode from it. Idempotent: a rewritten value has no `%` left.
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _path_valid(case, params):
    validator = case.operation.get_parameter_set(ParameterLocation.PATH).get_strict_validator()
    try:
        return validator.is_valid({k: v if isinstance(v, str) else str(v) for k, v in params.items()})
    except Exception:  # a pattern jsonschema_rs cannot compile: nothing to compare
        return None


def _decoded(params):
    """The values as the server reads them, or None when one is not UTF-8 (refused)."""
    out = {}
    for name, value in params.items():
        if isinstance(value, str):
            try:
                value = urllib.parse.unquote(value, errors="strict")
            except UnicodeDecodeError:
                return None
        out[name] = value
    return out


def _fix_path_params(case):
    params = case.path_parameters
    if not params or not any(isinstance(v, str) and _ESCAPE.search(v) for v in params.values()):
        return
    meta = getattr(case, "meta", None)
    component = getattr(meta, "components", {}).get(ParameterLocation.PATH) if meta else None
    negative = component is not None and str(getattr(component, "mode", "")) == "negative"
    decoded = _decoded(params)
    server_valid = decoded is not None and _path_valid(case, decoded)
    sent_valid = _path_valid(case, params)
    if server_valid is None or sent_valid is None:
        return
    if (not negative and server_valid) or (negative and (sent_valid or not server_valid)):
        return
    for name, value in list(params.items()):
        if isinstance(value, str):
            params[name] = _ESCAPE.sub("_", value)


# A user id created with a literal `%XX` ("%41b") cannot be reached again through Schemathesis'
# links, which send it decoded ("Ab"): the stateful phase would report the user it has just
# created as lost. `%` and `_` are both allowed in a user id, so a `%` in a `userId` of a request
# body becomes `_`, which changes no case's validity.
def _fix_body_user_ids(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "userId" and isinstance(item, str):
                value[key] = item.replace("%", "_")
            else:
                _fix_body_user_ids(item)
    elif isinstance(value, list):
        for item in value:
            _fix_body_user_ids(item)


@schemathesis.hook
def before_call(context, case, kwargs):
    _fix_list_params(case)
    _fix_path_params(case)
    _fix_body_user_ids(case.body)
    headers = case.headers
    if not headers:
        return
    for name, value in list(headers.items()):
        if name.lower() == "x-idempotency-key" and isinstance(value, str) and _VALID.match(value):
            suffix = f"~{_RUN}{next(_COUNTER)}"
            headers[name] = value[: 255 - len(suffix)] + suffix
PY

# write_config NAME [TOML...]: the config of one run: shared settings plus the given lines.
write_config() {
  local file="$REPORT_DIR/$1.toml"
  shift
  {
    echo "# Generated by scripts/schemathesis.sh (run $RUN_ID)."
    echo "hooks = \"$HOOKS\""
    echo "continue-on-failure = true"
    echo
    echo "[generation]"
    echo "database = \"none\""
    printf '%s\n' "$@"
  } >"$file"
  echo "$file"
}

# 1. The tenant API with the tenant key. `X-Tenant-ID` is the key's tenant (any other value is
# only ever a 403 `tenant_mismatch`, which would hide everything behind it). Path parameters that
# need an existing object name the ones created above for the operations that would only ever
# answer 404 otherwise (membership); the rest are generated, and every phase also reuses ids that
# earlier responses returned (Schemathesis' "extra data sources"), so generated and real ids are
# both exercised.
API_CONFIG="$(write_config api \
  '' \
  '[auth.openapi.apiKey]' \
  "api_key = \"$TENANT_KEY\"" \
  '' \
  '[parameters]' \
  "\"header.X-Tenant-ID\" = \"$TENANT\"" \
  '' \
  '# The fixed dialog (and alice in it) can be removed by a fuzzed DELETE /api/dialogs/{dialogId}' \
  '# (its id is reused from responses) or DELETE /api/users/{userId} (alice is an example): 404' \
  '# is then right. The stateful check that a just-created resource is found counts a fixed' \
  '# parameter as one taken from the creating response, so it would read that 404 as a lost' \
  '# dialog; it is off for these operations only.' \
  '[[operations]]' \
  'include-operation-id = ["listMessages", "createMessage"]' \
  "parameters = { \"path.dialogId\" = \"$DIALOG_ID\" }" \
  'checks = { ensure_resource_availability = { enabled = false } }' \
  '' \
  '[[operations]]' \
  'include-operation-id = "markAllRead"' \
  "parameters = { \"path.dialogId\" = \"$DIALOG_ID\", \"path.userId\" = \"alice\" }" \
  'checks = { ensure_resource_availability = { enabled = false } }')"

# 2. Tenants and API keys with the operator key: `tenantId` is our tenant; `keyId` a key made to be
# revoked (not the one run 1 uses).
OPERATOR_CONFIG="$(write_config api-operator \
  '' \
  '[auth.openapi.apiKey]' \
  "api_key = \"$ADMIN_KEY\"" \
  '' \
  '[parameters]' \
  "\"path.tenantId\" = \"$TENANT\"" \
  "\"path.keyId\" = \"$VICTIM_KEY_ID\"" \
  '' \
  '# DELETE deletes a tenant of its own, so that the other operations keep theirs; once it is' \
  '# gone, 404 is right. It stays out of the stateful phase: there the fixed id would replace' \
  '# the one of a tenant the scenario has just created, and its 404 would read as a lost one.' \
  '[[operations]]' \
  'include-operation-id = "deleteTenant"' \
  "parameters = { \"path.tenantId\" = \"$VICTIM_TENANT\" }" \
  'phases = { stateful = { enabled = false } }')"

# 3. The BFF. Its spec has no security scheme: the login routes are public. `GET /ws` stays in
# without a token: a valid WebSocket request switches protocols, which an HTTP test client cannot
# follow (without the upgrade headers the handshake is refused with 400, with them the request
# never completes), so a session token would only turn every positive case into a false failure;
# without one the route is still checked for its validation of `since`/`token` and its 401.
BFF_CONFIG="$(write_config bff)"

SUMMARY=()
FAILED=()

# run NAME CONFIG SPEC URL MAX_TIME FILTER...: one schemathesis run; output to the terminal and to
# .local/logs/schemathesis-run-NAME.log, JUnit report to $REPORT_DIR/NAME.junit.xml.
run() {
  local name="$1" config="$2" spec="$3" url="$4" budget="$5" start rc log
  log="$LOG_DIR/schemathesis-run-$name.log"
  shift 5
  # shellcheck disable=SC2054 # the commas belong to --phases
  local args=(
    --config-file "$config" run "$spec" --url "$url"
    --checks all
    --phases examples,coverage,fuzzing,stateful
    --max-examples "$MAX_EXAMPLES"
    --max-time "$budget"
    --workers "$WORKERS"
    --request-timeout 10
    --max-response-time "$MAX_RESPONSE_TIME"
    --report-junit-path "$REPORT_DIR/$name.junit.xml" --report-dir "$REPORT_DIR/$name"
    # The keys are throwaway ones made for this run: show them, so that every curl reproducer
    # (X-API-Key, X-Idempotency-Key) is exact.
    --output-sanitize false
    --no-color
    "$@"
  )
  [ -n "$SEED" ] && args+=(--seed "$SEED")
  # shellcheck disable=SC2206 # word splitting intended: extra CLI options
  [ -n "${CHAT3_SCHEMATHESIS_ARGS:-}" ] && args+=($CHAT3_SCHEMATHESIS_ARGS)
  echo
  echo "================================================================ schemathesis: $name"
  echo "\$ schemathesis ${args[*]}"
  start=$SECONDS
  set +e
  # The hard limit covers schema loading, shrinking and reporting on top of the budget.
  timeout --kill-after=10 $((budget + 90)) "$VENV/bin/schemathesis" "${args[@]}" </dev/null 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  case "$rc" in
    0) SUMMARY+=("ok      $name ($((SECONDS - start)) s)") ;;
    124 | 137) SUMMARY+=("FAILED  $name (timed out after $((SECONDS - start)) s)") ;;
    *) SUMMARY+=("FAILED  $name ($((SECONDS - start)) s, exit $rc)") ;;
  esac
  [ "$rc" = 0 ] || FAILED+=("$name")
}

run api "$API_CONFIG" "$ROOT/openapi/openapi.yaml" "$API_URL" "$MAX_TIME" --exclude-tag tenants
run api-operator "$OPERATOR_CONFIG" "$ROOT/openapi/openapi.yaml" "$API_URL" $((MAX_TIME * 2 / 5)) --include-tag tenants
run bff "$BFF_CONFIG" "$ROOT/openapi/bff.yaml" "$BFF_URL" $((MAX_TIME * 2 / 5))

# ---------------------------------------------------------------------------- summary
echo
echo "================================================================ schemathesis summary"
echo "schemathesis $SCHEMATHESIS_VERSION; checks: all; logs: .local/logs/schemathesis-*.log; reports: ${REPORT_DIR#"$ROOT"/}/"
"$VENV/bin/python" - "$REPORT_DIR"/*.junit.xml <<'PY' || true
# One line per failure found: run, operation, check, and the response that failed it.
import json
import re
import sys
import xml.etree.ElementTree as ET

for path in sys.argv[1:]:
    run = path.rsplit("/", 1)[-1].removesuffix(".junit.xml")
    try:
        root = ET.parse(path).getroot()
    except Exception as exc:  # a run that crashed or timed out leaves no report
        print(f"  {run}: no report ({exc})")
        continue
    for case in root.iter("testcase"):
        for problem in [*case.iter("failure"), *case.iter("error")]:
            text = problem.text or problem.get("message") or ""
            if problem.tag == "error":
                first = next((line.strip() for line in text.splitlines() if line.strip()), "error")
                print(f"  {run}: {case.get('name')}: error: {first[:160]}")
                continue
            # Each failing case: "- STxxx Title" lines, then "[status] Reason:" and the body.
            for block in re.split(r"\n(?=\d+\. Test Case ID)", text):
                titles = re.findall(r"^- (.+)$", block, re.M)
                status = re.search(r"^\[(\d{3})\]", block, re.M)
                body = re.search(r"^\s+`(.*)`\s*$", block, re.M)
                answer = status.group(1) if status else "?"
                if body:
                    try:
                        doc = json.loads(body.group(1))
                        if not isinstance(doc, dict) or "code" not in doc:
                            raise ValueError
                        answer += f" {doc['code']}: {doc.get('message', '')}"[:140]
                    except Exception:
                        answer += " " + body.group(1)[:100]
                for title in titles:
                    print(f"  {run}: {case.get('name')}: {title} -> {answer}")
PY
printf '%s\n' "${SUMMARY[@]}"
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "schemathesis found problems in: ${FAILED[*]} (reproduce with the curl commands above)"
  exit 1
fi
echo "schemathesis: no failures"
