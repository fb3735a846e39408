-- wrk: product searches over a mix of words, filters, sorts and limits.
local queries = {
	"q=laptop", "q=lapt", "q=red+oak", "q=compact+kettle", "q=tent&in_stock=true",
	"q=pro&sort=price", "q=lamp&sort=-price", "q=bike&min_price=1000&max_price=90000",
	"q=steel+knife", "q=blue&attr.size=M", "category=1&sort=newest",
	"q=notebook&sort=rating", "attr.color=green&sort=price", "q=runn",
}
math.randomseed(os.time())
request = function()
	local q = queries[math.random(#queries)]
	return wrk.format("GET", "/api/v1/products?" .. q .. "&limit=" .. math.random(10, 30))
end
