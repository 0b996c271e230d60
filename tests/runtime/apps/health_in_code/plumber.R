# GET /health added in R code, failing: the pool's health checks must find it in plumber's
# router (no annotation declares it) and replace the workers that answer 500.

#* @get /ping
function() "pong"

#* @plumber
function(pr) {
  pr_get(pr, "/health", function() stop("always unhealthy"))
}
