-- Included by the load scripts: with STOP_AFTER=N each wrk thread stops
-- after N answers, so a run is a fixed amount of work (scripts/bench
-- --instructions counts instructions per request).
local stop_after = tonumber(os.getenv("STOP_AFTER") or "0")
local answers = 0
if stop_after > 0 then
  response = function()
    answers = answers + 1
    if answers >= stop_after then wrk.thread:stop() end
  end
end
