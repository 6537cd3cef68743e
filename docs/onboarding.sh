#!/usr/bin/env bash
# A chain onboards itself through the API: the operator makes the tenant and
# its back-office key; the back office makes a branch, products and a till
# key; the till downloads its catalog and sells. Paste the lines into a
# shell, or run the file: `OPERATOR=pos_… docs/onboarding.sh`. It needs curl
# and jq; API defaults to the demo's server. (docs/api.md shows this file;
# a test runs it against a fresh server.)
set -euo pipefail
API=${API:-http://127.0.0.1:8080}
J='Content-Type: application/json'
# curl reads the key from a pipe, not from its command line (which `ps` shows)
key() { printf 'header = "Authorization: Bearer %s"\n' "$1"; }

# the operator: a tenant, and its back office's key (the token is shown this once)
T=$(curl -sf -K <(key "$OPERATOR") -H "$J" "$API/v1/tenants" \
  -d '{"name": "Café Nord", "currency": "EUR"}' | jq -r .id)
OFFICE=$(curl -sf -K <(key "$OPERATOR") -H "$J" "$API/v1/tenants/$T/keys" \
  -d '{"role": "backoffice", "label": "head office"}' | jq -r .token)

# the back office: its zone, a branch, products with list prices, a till key bound to the branch
curl -sf -K <(key "$OFFICE") -H "$J" -XPATCH "$API/v1/tenants/$T" -d '{"timeZone": "Europe/Berlin"}' >/dev/null
B=$(curl -sf -K <(key "$OFFICE") -H "$J" "$API/v1/tenants/$T/branches" \
  -d '{"code": "HAM-1", "name": "Hamburg"}' | jq -r .id)
LATTE=$(curl -sf -K <(key "$OFFICE") -H "$J" "$API/v1/tenants/$T/products" \
  -d '[{"sku": "LATTE", "name": "Latte", "price": "3.20"}, {"sku": "ESP", "name": "Espresso", "price": "2.10"}]' \
  | jq -r '.products[] | select(.sku == "LATTE") | .id')
TILL=$(curl -sf -K <(key "$OFFICE") -H "$J" "$API/v1/tenants/$T/keys" \
  -d "{\"role\": \"till\", \"branchID\": $B, \"label\": \"till 1\"}" | jq -r .token)

# the till: its catalog (open branches, active products, prices), then a sale at the list price
curl -sf -K <(key "$TILL") "$API/v1/tenants/$T/catalog" | jq -c '.products'
curl -sf -K <(key "$TILL") -H "$J" "$API/v1/tenants/$T/branches/$B/sales-transactions" \
  -d "{\"productID\": $LATTE, \"quantitySold\": 2, \"idempotencyKey\": \"till-1:0001\"}" | jq -c .

# the back office sees it: today's report in the tenant's zone
DAY=$(TZ=Europe/Berlin date +%F)
curl -sf -K <(key "$OFFICE") "$API/v1/tenants/$T/reports/sales?from=$DAY&to=$DAY&groupBy=product" | jq -c '.rows'
echo "T=$T B=$B LATTE=$LATTE OFFICE=$OFFICE TILL=$TILL"
