-- wrk script for bench/run.sh: GET /oauth/check with one credential header and
-- print one JSON line of results. HEADER and VALUE come from the environment.
-- wrk counts every status of 400 or more as an error: each check here passes.
wrk.method = "GET"
wrk.headers[os.getenv("HEADER")] = os.getenv("VALUE")
dofile("bench/wrk-report.lua")
