-- wrk: POST /api/v1/orders, two lines of one unit each, with an
-- Idempotency-Key, as bench/orders.sql runs it in pgbench.  The shopper is
-- a line "user_id token" of ORDER_TOKENS, drawn at random, and sends the
-- address of its own that bench/orders.sql gives it (X-Forwarded-For: the
-- bench's web server trusts loopback as a proxy, as it would HAProxy).
-- ORDER_SPREAD=0: the two products uniform over [ORDER_PMIN, ORDER_PMAX],
-- the flash sale; 1: Zipf-like (P(k) ~ k^-1.01, pgbench's random_zipfian)
-- over [ID_MIN, ID_MAX], the catalog's spread.  (wrk's Lua is LuaJIT,
-- Lua 5.1: no // operator.)
local users = {}
for line in io.lines(os.getenv("ORDER_TOKENS")) do
	local id, token = line:match("^(%d+) (%S+)$")
	if id then
		id = tonumber(id)
		users[#users + 1] = { "Bearer " .. token,
			string.format("10.0.%d.%d", math.floor(id / 250) % 250, id % 250 + 1) }
	end
end
if #users == 0 then
	error("no bench users in " .. tostring(os.getenv("ORDER_TOKENS")))
end

local spread = os.getenv("ORDER_SPREAD") == "1"
local lo = tonumber(os.getenv(spread and "ID_MIN" or "ORDER_PMIN"))
local hi = tonumber(os.getenv(spread and "ID_MAX" or "ORDER_PMAX"))

-- The cumulative weights of ranks 1..n, for drawing a rank by bisection.
local cdf = {}
if spread then
	local sum = 0
	for k = 1, hi - lo + 1 do
		sum = sum + k ^ -1.01
		cdf[k] = sum
	end
end

local function product()
	if not spread then
		return math.random(lo, hi)
	end
	local u, a, b = math.random() * cdf[#cdf], 1, #cdf
	while a < b do
		local m = math.floor((a + b) / 2)
		if cdf[m] < u then a = m + 1 else b = m end
	end
	return lo + a - 1
end

math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))

request = function()
	local u = users[math.random(#users)]
	local body = string.format(
		'{"items":[{"product_id":"%d","quantity":1},{"product_id":"%d","quantity":1}]}',
		product(), product())
	return wrk.format("POST", "/api/v1/orders", {
		["Content-Type"] = "application/json",
		["Authorization"] = u[1],
		["X-Forwarded-For"] = u[2],
		["Idempotency-Key"] = string.format("wrk-%08x%08x",
			math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)),
	}, body)
end
