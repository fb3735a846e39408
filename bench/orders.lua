-- wrk: POST /api/v1/orders, two lines of one unit each, products drawn from
-- [ORDER_PMIN, ORDER_PMAX]; the same choice as bench/orders.sql makes.
local lo = tonumber(os.getenv("ORDER_PMIN") or "1")
local hi = tonumber(os.getenv("ORDER_PMAX") or "50")
local auth = "Bearer " .. (os.getenv("ORDER_TOKEN") or "")
math.randomseed(os.time())
request = function()
	local body = string.format(
		'{"items":[{"product_id":"%d","quantity":1},{"product_id":"%d","quantity":1}]}',
		math.random(lo, hi), math.random(lo, hi))
	return wrk.format("POST", "/api/v1/orders",
		{ ["Content-Type"] = "application/json", ["Authorization"] = auth }, body)
end
