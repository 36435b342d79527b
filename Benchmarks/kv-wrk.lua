-- wrk script: GET a random key from the list in KEYS (one path per line).
local paths = {}
for line in io.lines(os.getenv("KEYS")) do paths[#paths + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
