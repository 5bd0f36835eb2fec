-- wrk script for bench/run.sh: POST a form with HTTP Basic credentials and print
-- one JSON line of results. BODY and BASIC come from the environment.
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
dofile("bench/wrk-report.lua")
