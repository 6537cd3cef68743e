-- One sale for each bench tenant in turn (thread i of BENCH_THREADS takes
-- every BENCH_THREADS-th tenant), each with the tenant's till key, from
-- tenant BENCH_OFFSET + 1 on; the passivation bench seeds branch t and
-- product t for tenant t.
local tenants = tonumber(os.getenv("BENCH_TENANTS") or "100000")
local threads = tonumber(os.getenv("BENCH_THREADS") or "2")
local secret = os.getenv("BENCH_SECRET") or ""
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
local created = 0
function setup(thread)
  created = created + 1
  thread:set("id", created)
end
local n = 0
request = function()
  local t = (offset + n * threads + id - 1) % tenants + 1
  n = n + 1
  local body = string.format('{"productID":%d,"quantitySold":1,"pricePerUnit":"1.00"}', t)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = string.format("Bearer pos_bench%d_%s%d", t, secret, t),
  }
  return wrk.format("POST", string.format("/v1/tenants/%d/branches/%d/sales-transactions", t, t), headers, body)
end
