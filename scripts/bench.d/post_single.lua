-- One sale per request, spread over the bench tenants (see scripts/bench),
-- each with its tenant's till key (pos_bench<t>_<BENCH_SECRET><t>).
-- BENCH_BODY=original: the original service's own body (tenant and branch
-- in it too, and a timestamp), as `scripts/bench --hot` sends it.
local tenants = tonumber(os.getenv("BENCH_TENANTS") or "100")
local products = tonumber(os.getenv("BENCH_PRODUCTS") or "1000")
local secret = os.getenv("BENCH_SECRET") or ""
local original = os.getenv("BENCH_BODY") == "original"
wrk.method = "POST"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
  local t = math.random(1, tenants)
  local b = 2 * t - math.random(0, 1)
  local p = (t - 1) * products + math.random(1, products)
  local sale = string.format('"productID":%d,"quantitySold":%d,"pricePerUnit":"%d.%02d"',
    p, math.random(1, 3), math.random(1, 20), math.random(0, 99))
  local body
  if original then
    body = string.format('{"tenantID":%d,"branchID":%d,%s,"timestamp":"%s"}',
      t, b, sale, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  else
    body = "{" .. sale .. "}"
  end
  -- A table given to wrk.format replaces wrk.headers: it carries them all.
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = string.format("Bearer pos_bench%d_%s%d", t, secret, t),
  }
  return wrk.format(nil, string.format("/v1/tenants/%d/branches/%d/sales-transactions", t, b), headers, body)
end
