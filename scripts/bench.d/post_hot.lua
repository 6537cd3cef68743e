-- The original service's own load shape (issue 37): a few busy tenants
-- (BENCH_TENANTS, 3), a few hot products each (BENCH_PRODUCTS, 5: 15 in
-- all), one sale per request in the original's request body (tenant and
-- branch in the body too, a timestamp), each with its tenant's till key.
local tenants = tonumber(os.getenv("BENCH_TENANTS") or "3")
local products = tonumber(os.getenv("BENCH_PRODUCTS") or "5")
local secret = os.getenv("BENCH_SECRET") or ""
wrk.method = "POST"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
  local t = math.random(1, tenants)
  local b = 2 * t - math.random(0, 1)
  local p = (t - 1) * products + math.random(1, products)
  local body = string.format(
    '{"tenantID":%d,"branchID":%d,"productID":%d,"quantitySold":%d,"pricePerUnit":"%d.%02d","timestamp":"%s"}',
    t, b, p, math.random(1, 3), math.random(1, 20), math.random(0, 99), os.date("!%Y-%m-%dT%H:%M:%SZ"))
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = string.format("Bearer pos_bench%d_%s%d", t, secret, t),
  }
  return wrk.format(nil, string.format("/v1/tenants/%d/branches/%d/sales-transactions", t, b), headers, body)
end
