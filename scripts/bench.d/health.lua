-- GET /health, for a fixed number of answers (see stop_after.lua).
dofile("scripts/bench.d/stop_after.lua")
