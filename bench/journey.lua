-- wrk: one kind of the shoppers' journey mix (./dev bench load and soak).
-- bench.sh runs one wrk per kind at once, with connections in the mix's
-- proportions, so that each kind reports its own latency:
--   JOURNEY_KIND=browse    a product page (60%) or a category's list page
--                          (40%; JOURNEY_CATEGORIES, comma-separated)
--   JOURNEY_KIND=search    bench/search.lua's searches (JOURNEY_SEARCH: its path)
--   JOURNEY_KIND=cart      a signed-in shopper sets a line of the cart
--                          (1 to 3 units; one in four removes it) to
--                          one of 5 products of its own
--   JOURNEY_KIND=checkout  a signed-in shopper orders one or two products,
--                          paid by card (tok_visa, the simulated provider)
-- Products are drawn uniformly from [ID_MIN, ID_MAX]; shoppers are the
-- "user_id token" lines of ORDER_TOKENS, each with an address of its own
-- (X-Forwarded-For, as bench/orders.lua).  JOURNEY_DELAY_MS, when set, is
-- each connection's pause between requests (the soak's pace).  done()
-- prints one line: "journey KIND requests req/s p50 p95 p99 errors", the
-- latencies in ms and errors counting every answer of 400 or more and
-- every socket error.
local kind = os.getenv("JOURNEY_KIND")
local lo, hi = tonumber(os.getenv("ID_MIN")), tonumber(os.getenv("ID_MAX"))
local pause = tonumber(os.getenv("JOURNEY_DELAY_MS") or "")

math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))

local function users()
	local list = {}
	for line in io.lines(os.getenv("ORDER_TOKENS")) do
		local id, token = line:match("^(%d+) (%S+)$")
		if id then
			id = tonumber(id)
			list[#list + 1] = { ["Authorization"] = "Bearer " .. token,
				["X-Forwarded-For"] = string.format("10.0.%d.%d",
					math.floor(id / 250) % 250, id % 250 + 1),
				["Content-Type"] = "application/json" }
		end
	end
	if #list == 0 then
		error("no bench users in " .. tostring(os.getenv("ORDER_TOKENS")))
	end
	return list
end

local kinds = {}

kinds.browse = function()
	local cats = {}
	for c in (os.getenv("JOURNEY_CATEGORIES") or ""):gmatch("%d+") do
		cats[#cats + 1] = c
	end
	return function()
		if #cats == 0 or math.random() < 0.6 then
			return wrk.format("GET", "/api/v1/products/" .. math.random(lo, hi))
		end
		return wrk.format("GET", "/api/v1/products?category=" ..
			cats[math.random(#cats)] .. "&sort=newest&limit=20")
	end
end

kinds.search = function()
	dofile(os.getenv("JOURNEY_SEARCH"))
	return request
end

-- Each shopper's cart holds some of 5 products of its own, so that it
-- never reaches the cart's limit of lines.
kinds.cart = function()
	local list = users()
	return function()
		local u, q = math.random(#list), math.random(0, 3)
		return wrk.format("PUT", "/api/v1/cart/items/" ..
			(lo + (u * 5 + math.random(0, 4)) % (hi - lo + 1)),
			list[u], string.format('{"quantity":%d}', q))
	end
end

kinds.checkout = function()
	local list = users()
	return function()
		local h, items = list[math.random(#list)], {}
		for i = 1, math.random(1, 2) do
			items[i] = string.format('{"product_id":"%d","quantity":1}',
				math.random(lo, hi))
		end
		local headers = { ["Idempotency-Key"] = string.format("load-%08x%08x",
			math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)) }
		for k, v in pairs(h) do headers[k] = v end
		return wrk.format("POST", "/api/v1/orders", headers,
			'{"items":[' .. table.concat(items, ",") ..
			'],"payment":{"method":"card","token":"tok_visa"}}')
	end
end

if not kinds[kind] then
	error("JOURNEY_KIND must be browse, search, cart or checkout")
end
request = kinds[kind]()

if pause then
	delay = function()
		return pause
	end
end

done = function(summary, latency, _)
	local e = summary.errors
	local secs = summary.duration / 1e6
	io.write(string.format("journey %s %d %.0f %.2f %.2f %.2f %d\n", kind,
		summary.requests, summary.requests / secs,
		latency:percentile(50) / 1000, latency:percentile(95) / 1000,
		latency:percentile(99) / 1000,
		e.connect + e.read + e.write + e.status + e.timeout))
end
