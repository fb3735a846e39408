-- wrk: GET /api/v1/products/{id} with ids drawn from [ID_MIN, ID_MAX].
local lo = tonumber(os.getenv("ID_MIN") or "1")
local hi = tonumber(os.getenv("ID_MAX") or "100000")
math.randomseed(os.time())
request = function()
	return wrk.format("GET", "/api/v1/products/" .. math.random(lo, hi))
end
