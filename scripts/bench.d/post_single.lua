-- One sale per request, spread over the bench tenants (see scripts/bench),
-- each with its tenant's till key (pos_bench<t>_<BENCH_SECRET><t>).
local tenants = tonumber(os.getenv("BENCH_TENANTS") or "100")
local products = tonumber(os.getenv("BENCH_PRODUCTS") or "1000")
local secret = os.getenv("BENCH_SECRET") or ""
wrk.method = "POST"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
  local t = math.random(1, tenants)
  local b = 2 * t - math.random(0, 1)
  local p = (t - 1) * products + math.random(1, products)
  local body = string.format('{"productID":%d,"quantitySold":%d,"pricePerUnit":"%d.%02d"}',
    p, math.random(1, 3), math.random(1, 20), math.random(0, 99))
  -- A table given to wrk.format replaces wrk.headers: it carries them all.
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = string.format("Bearer pos_bench%d_%s%d", t, secret, t),
  }
  return wrk.format(nil, string.format("/v1/tenants/%d/branches/%d/sales-transactions", t, b), headers, body)
end
