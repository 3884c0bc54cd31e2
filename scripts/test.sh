#!/usr/bin/env bash
# The one command that runs every check of the workspace:
#
#   scripts/test.sh                 # fmt check, clippy (-D warnings), cargo test --workspace,
#                                   # scripts/schemathesis.sh
#   scripts/test.sh -p chat3-api    # arguments replace `--workspace` in `cargo test`
#
# It starts its own SecantusDB (in memory, on a free port) and makes sure RabbitMQ is up (see
# scripts/services.sh), exports CHAT3_TEST_MONGODB_URI and RABBITMQ_URL for the tests, runs every
# step even when an earlier one fails (so a CI log shows all problems at once), prints a summary,
# stops what it started, and exits non-zero if any step failed.
#
#   CHAT3_FAIL_FAST=1           stop at the first failing step
#   CHAT3_SKIP_LINT=1           skip fmt and clippy (quick local test runs)
#   CHAT3_SKIP_SCHEMATHESIS=1   skip the Schemathesis step (scripts/schemathesis.sh)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

trap chat3_stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-$([ -t 1 ] && echo always || echo never)}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# A CI build is from scratch and never rebuilt: incremental caches would only take disk.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi

chat3_ensure_rabbitmq
chat3_start_secantus :memory:
export CHAT3_TEST_MONGODB_URI="$CHAT3_SECANTUS_URI"
export RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
echo "CHAT3_TEST_MONGODB_URI=$CHAT3_TEST_MONGODB_URI"
echo "RABBITMQ_URL=$RABBITMQ_URL"

failed=()
summary=()

# step NAME COMMAND...: run one check, time it and remember the outcome.
step() {
  local name="$1" start rc
  shift
  echo
  echo "---------------------------------------------------------------- $name"
  echo "\$ $*"
  start=$SECONDS
  set +e
  "$@"
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    summary+=("ok      $name ($((SECONDS - start)) s)")
  else
    summary+=("FAILED  $name ($((SECONDS - start)) s, exit $rc)")
    failed+=("$name")
    if [ "${CHAT3_FAIL_FAST:-0}" = 1 ]; then
      print_summary
      exit "$rc"
    fi
  fi
}

print_summary() {
  echo
  echo "---------------------------------------------------------------- summary"
  printf '%s\n' "${summary[@]}"
}

if [ "${CHAT3_SKIP_LINT:-0}" != 1 ]; then
  step "cargo fmt --check" cargo fmt --all -- --check
  step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
fi
# With arguments, they replace `--workspace` (so `-p chat3-api` narrows the run); pass
# `--workspace -- NAME` to filter across the whole workspace.
if [ "$#" -gt 0 ]; then
  step "cargo test $*" cargo test "$@"
else
  step "cargo test" cargo test --workspace
fi
# Schemathesis against both OpenAPI specs, on the broker above and a SecantusDB of its own: the
# one above holds every test's database by now, and its pauses under that load (seconds, seen
# once in a long run) would read as responses over Schemathesis' time limit.
# CHAT3_SKIP_SCHEMATHESIS=1 skips it.
if [ "${CHAT3_SKIP_SCHEMATHESIS:-0}" != 1 ]; then
  step "schemathesis" env -u CHAT3_TEST_MONGODB_URI scripts/schemathesis.sh
fi

print_summary
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
echo "all checks passed"
