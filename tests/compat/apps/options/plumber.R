# plumber options set by the plumber.R itself change how plumber answers unmatched requests.
options(plumber.trailingSlash = TRUE, plumber.methodNotAllowed = FALSE,
        plumber.maxRequestSize = 100)

#* @get /items/
function() {
  list(items = 1:3)
}

#* @post /only-post
function() {
  "posted"
}
