-- wrk: GET /api/v1/analytics/summary of the last 30 days (its default
-- range), as the admin whose token is SUMMARY_TOKEN.
local auth = "Bearer " .. (os.getenv("SUMMARY_TOKEN") or "")
request = function()
	return wrk.format("GET", "/api/v1/analytics/summary", { ["Authorization"] = auth })
end
