-- 100 sales per request for one tenant's branch (see scripts/bench), with
-- the tenant's till key (pos_bench<t>_<BENCH_SECRET><t>).
local tenants = tonumber(os.getenv("BENCH_TENANTS") or "100")
local products = tonumber(os.getenv("BENCH_PRODUCTS") or "1000")
local secret = os.getenv("BENCH_SECRET") or ""
wrk.method = "POST"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
  local t = math.random(1, tenants)
  local items = {}
  for i = 1, 100 do
    local p = (t - 1) * products + math.random(1, products)
    items[i] = string.format('{"productID":%d,"quantitySold":%d,"pricePerUnit":"%d.%02d"}',
      p, math.random(1, 3), math.random(1, 20), math.random(0, 99))
  end
  local body = "[" .. table.concat(items, ",") .. "]"
  -- A table given to wrk.format replaces wrk.headers: it carries them all.
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = string.format("Bearer pos_bench%d_%s%d", t, secret, t),
  }
  return wrk.format(nil, string.format("/v1/tenants/%d/branches/%d/sales-transactions", t, 2 * t), headers, body)
end
