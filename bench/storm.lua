-- bench/storm.sh: POST /wechat/login, every request with a code never used
-- before, each naming a new user (the fake WeChat logs any name in, each
-- code once). The first script argument keeps codes apart across rounds.
local prefix = "s"
local n = 0

function init(args)
	prefix = args[1] or prefix
end

function request()
	n = n + 1
	return wrk.format("POST", "/wechat/login", { ["Content-Type"] = "application/json" },
		string.format('{"code":"%s-%d"}', prefix, n))
end
