# Router changes made in R code rather than annotations: a `#* @plumber` block that adds a
# route, a filter, a hook and custom 404 / error handlers (plumber applies it while loading).

#* @get /annotated
function() {
  list(where = "annotation")
}

#* @get /boom
function() {
  stop("kaboom")
}

#* @plumber
function(pr) {
  pr %>%
    pr_get("/added", function() list(where = "pr_get")) %>%
    pr_filter("tag", function(req, res) {
      res$setHeader("X-Filtered", "yes")
      forward()
    }) %>%
    pr_hook("postroute", function(req, res, value) {
      res$setHeader("X-Hooked", "yes")
      value
    }) %>%
    pr_set_404(function(req, res) {
      res$status <- 404
      list(custom = "not here")
    }) %>%
    pr_set_error(function(req, res, err) {
      res$status <- 500
      list(custom_error = conditionMessage(err))
    })
}
