#!/usr/bin/env bash
# The one command that starts the whole local stack:
#
#   scripts/dev.sh              # build (debug) and run everything; Ctrl-C stops it all
#   scripts/dev.sh --release    # build and run release binaries instead
#   scripts/dev.sh --no-build   # use the binaries already in target/
#   scripts/dev.sh --reset      # forget the local data and keys first (.local/dev)
#
# What runs:
#   RabbitMQ        127.0.0.1:5672 (installed/started if needed; left running if it already was)
#   SecantusDB      free port, data in .local/dev/secantus-data (survives restarts)
#   chat3-api       http://$CHAT3_API_BIND            (default 127.0.0.1:3000)
#   update-worker   consumes chat3_events, writes and publishes per-user updates
#   bff             http://$CHAT3_BFF_BIND            (default 127.0.0.1:8080), tenant `demo`
#
# Secrets are generated once and kept under .local/dev/ (admin key, demo tenant key, JWT secret),
# so a restart keeps working with the same keys. Logs: .local/logs/{secantus,chat3-api,
# update-worker,bff}.log. Debug builds are the default because they share artifacts with
# `cargo test` and build much faster on small machines.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
# shellcheck source=scripts/services.sh
source scripts/services.sh

PROFILE=debug
BUILD=1
RESET=0
for arg in "$@"; do
  case "$arg" in
    --release) PROFILE=release ;;
    --no-build) BUILD=0 ;;
    --reset) RESET=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) chat3_die "unknown argument: $arg (see --help)" ;;
  esac
done

DEV_DIR="$ROOT/.local/dev"
LOG_DIR="$ROOT/.local/logs"
API_BIND="${CHAT3_API_BIND:-127.0.0.1:3000}"
BFF_BIND="${CHAT3_BFF_BIND:-127.0.0.1:8080}"
API_URL="http://$API_BIND"
BFF_URL="http://$BFF_BIND"
TENANT=demo
export RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RUST_LOG="${RUST_LOG:-info}"
export CHAT3_SECANTUS_LOG="$LOG_DIR/secantus.log"

# pids of the chat3 processes we started, in start order.
PIDS=()
NAMES=()

stop_everything() {
  trap - EXIT INT TERM
  echo
  # Stop in reverse order: bff, worker, api; then the stores.
  chat3_stop_started announce
  chat3_stop_all
}
trap stop_everything EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A secret kept in .local/dev/NAME, generated on first use.
secret() {
  local file="$DEV_DIR/$1" prefix="$2"
  if [ ! -s "$file" ]; then
    (umask 077 && python3 -c "import secrets; print('$prefix' + secrets.token_hex(24))" >"$file")
  fi
  cat "$file"
}

# Fail early when a port we need is taken (probably an earlier run still going).
require_free() {
  local host="${1%:*}" port="${1##*:}"
  if chat3_port_open "$host" "$port"; then
    chat3_die "$1 is already in use (another scripts/dev.sh running?); set ${2} to use another address"
  fi
}

# start NAME ARGS...: run target/$PROFILE/NAME in the background, logging to .local/logs/NAME.log.
start() {
  local name="$1" bin="$ROOT/target/$PROFILE/$1"
  shift
  [ -x "$bin" ] || chat3_die "$bin not found (drop --no-build?)"
  : >"$LOG_DIR/$name.log"
  # NO_COLOR keeps ANSI escapes out of the log files.
  NO_COLOR=1 "$bin" "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
  chat3_log "started $name (pid $!, log .local/logs/$name.log)"
}

# wait_http NAME URL: wait up to 60 s for URL to answer 200 while NAME's process is alive.
wait_http() {
  local name="$1" url="$2" i pid="${PIDS[${#PIDS[@]} - 1]}"
  for ((i = 0; i < 120; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$LOG_DIR/$name.log" >&2 || true
      chat3_die "$name exited during startup (log: .local/logs/$name.log)"
    fi
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    sleep 0.5
  done
  chat3_die "$name did not answer $url within 60 s (log: .local/logs/$name.log)"
}

# Read one field of a JSON document on stdin (`data.key`, ...).
json_field() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    v = v[part]
print(v)' "$1"
}

if [ "$RESET" = 1 ]; then
  chat3_log "removing .local/dev (data, keys)"
  rm -rf "$DEV_DIR"
fi
mkdir -p "$DEV_DIR" "$LOG_DIR"

require_free "$API_BIND" CHAT3_API_BIND
require_free "$BFF_BIND" CHAT3_BFF_BIND

if [ "$BUILD" = 1 ]; then
  chat3_log "building chat3-api, update-worker, bff ($PROFILE)"
  build_flags=()
  [ "$PROFILE" = release ] && build_flags+=(--release)
  cargo build "${build_flags[@]}" -p chat3-api -p chat3-update-worker -p chat3-bff --bins
fi

chat3_ensure_rabbitmq
chat3_start_secantus "$DEV_DIR/secantus-data"

ADMIN_KEY="$(secret admin-api-key adm_)"
JWT_SECRET="$(secret bff-jwt-secret '')"

# Shared by the API and the worker.
export MONGODB_URI="$CHAT3_SECANTUS_URI"
export CHAT3_MONGODB_DB="${CHAT3_MONGODB_DB:-chat3}"

CHAT3_API_BIND="$API_BIND" CHAT3_ADMIN_API_KEY="$ADMIN_KEY" start chat3-api serve
wait_http chat3-api "$API_URL/health"
start update-worker run

# The demo tenant (201 when new, 409 when it exists already).
status="$(curl -sS -o "$DEV_DIR/.tenant.json" -w '%{http_code}' -X POST "$API_URL/api/tenants" \
  -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d "{\"tenantId\":\"$TENANT\",\"name\":\"Demo\"}")"
case "$status" in
  200 | 201) chat3_log "created tenant $TENANT" ;;
  409) chat3_log "tenant $TENANT exists" ;;
  *) chat3_die "creating tenant $TENANT: HTTP $status $(cat "$DEV_DIR/.tenant.json")" ;;
esac

# The tenant key is shown only once, so keep it; make a new one if the stored one stopped working
# (e.g. after deleting the data directory without --reset).
TENANT_KEY=""
if [ -s "$DEV_DIR/demo-api-key" ]; then
  TENANT_KEY="$(cat "$DEV_DIR/demo-api-key")"
  status="$(curl -sS -o /dev/null -w '%{http_code}' "$API_URL/api/dialogs?limit=1" -H "X-API-Key: $TENANT_KEY")"
  [ "$status" = 200 ] || TENANT_KEY=""
fi
if [ -z "$TENANT_KEY" ]; then
  body="$(curl -sS -f -X POST "$API_URL/api/tenants/$TENANT/api-keys" \
    -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"name":"scripts/dev.sh"}')" || chat3_die "could not create an API key for $TENANT"
  TENANT_KEY="$(json_field data.key <<<"$body")"
  (umask 077 && echo "$TENANT_KEY" >"$DEV_DIR/demo-api-key")
  chat3_log "created an API key for tenant $TENANT"
fi
rm -f "$DEV_DIR/.tenant.json"

CHAT3_BFF_BIND="$BFF_BIND" CHAT3_API_URL="$API_URL" CHAT3_API_KEY="$TENANT_KEY" \
  CHAT3_TENANT_ID="$TENANT" BFF_JWT_SECRET="$JWT_SECRET" BFF_SMS_PROVIDER=console \
  CHAT3_BFF_MONGODB_DB="${CHAT3_BFF_MONGODB_DB:-chat3_bff}" start bff serve
wait_http bff "$BFF_URL/health"

cat <<EOF

chat3 is running.

  API            $API_URL          (health: $API_URL/health, ready: $API_URL/ready)
  BFF            $BFF_URL          (login codes are printed in .local/logs/bff.log)
  WebSocket      ws://$BFF_BIND/ws?token=<JWT>&since=0
  MongoDB        $MONGODB_URI   (db $CHAT3_MONGODB_DB)
  RabbitMQ       $RABBITMQ_URL
  Logs           .local/logs/

  Admin key      $ADMIN_KEY
  Tenant         $TENANT
  Tenant key     $TENANT_KEY

Try it:

  export K=$TENANT_KEY
  D=\$(curl -s -X POST $API_URL/api/dialogs -H "X-API-Key: \$K" -H 'Content-Type: application/json' \\
        -d '{"members":[{"userId":"alice"},{"userId":"bob"}]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["dialogId"])')
  curl -s -X POST $API_URL/api/dialogs/\$D/messages -H "X-API-Key: \$K" -H 'Content-Type: application/json' \\
        -d '{"senderId":"alice","content":"hi"}'
  curl -s $API_URL/api/users/bob/dialogs -H "X-API-Key: \$K"
  curl -s "$API_URL/api/users/bob/updates?since=0" -H "X-API-Key: \$K"

Ctrl-C stops everything.
EOF

# Stay in the foreground; if one service dies, say so and stop the rest.
set +e
wait -n "${PIDS[@]}"
rc=$?
set -e
for i in "${!PIDS[@]}"; do
  if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
    chat3_warn "${NAMES[$i]} exited (status $rc); see .local/logs/${NAMES[$i]}.log. Stopping the rest."
  fi
done
exit 1
