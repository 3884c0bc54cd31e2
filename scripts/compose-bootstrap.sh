#!/bin/sh
# One-shot setup for docker-compose: create the BFF's tenant and an API key for it through the
# tenant REST API (operator key), and write them to $OUT for the `bff` service to source.
# Idempotent: an existing tenant is kept, a stored key is reused while it still works.
#
#   CHAT3_API_URL         e.g. http://api:3000
#   CHAT3_ADMIN_API_KEY   the operator key
#   CHAT3_TENANT_ID       tenant to create (default demo)
#   OUT                   env file to write (default /run/chat3/bff.env)
set -eu

api="${CHAT3_API_URL:?CHAT3_API_URL is required}"
admin="${CHAT3_ADMIN_API_KEY:?CHAT3_ADMIN_API_KEY is required}"
tenant="${CHAT3_TENANT_ID:-demo}"
out="${OUT:-/run/chat3/bff.env}"

echo "waiting for $api/ready"
i=0
until curl -fsS -o /dev/null "$api/ready"; do
  i=$((i + 1))
  [ "$i" -lt 120 ] || { echo "API not ready" >&2; exit 1; }
  sleep 1
done

status=$(curl -sS -o /tmp/tenant.json -w '%{http_code}' -X POST "$api/api/tenants" \
  -H "X-API-Key: $admin" -H 'Content-Type: application/json' \
  -d "{\"tenantId\":\"$tenant\",\"name\":\"$tenant\"}")
case "$status" in
  200 | 201) echo "created tenant $tenant" ;;
  409) echo "tenant $tenant exists" ;;
  *) echo "creating tenant: HTTP $status $(cat /tmp/tenant.json)" >&2; exit 1 ;;
esac

if [ -s "$out" ]; then
  # shellcheck disable=SC1090
  . "$out"
  code=$(curl -sS -o /dev/null -w '%{http_code}' "$api/api/dialogs?limit=1" -H "X-API-Key: ${CHAT3_API_KEY:-}")
  if [ "$code" = 200 ]; then
    echo "reusing the stored API key"
    exit 0
  fi
fi

body=$(curl -fsS -X POST "$api/api/tenants/$tenant/api-keys" \
  -H "X-API-Key: $admin" -H 'Content-Type: application/json' -d '{"name":"bff"}')
key=$(printf '%s' "$body" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
[ -n "$key" ] || { echo "no key in response: $body" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
umask 077
printf 'export CHAT3_API_KEY=%s\nexport CHAT3_TENANT_ID=%s\n' "$key" "$tenant" >"$out"
echo "wrote $out"
