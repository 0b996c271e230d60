# Routes added in R code: pr_get(), pr_post(), pr_handle(), mounted routers (nested, and one
# loaded from another annotated file), pr_static(), a hook, all in a `#* @plumber` block.
# plumber serves them all; plumbline must route, document and label them from plumber's
# router as its workers report it.

#* @get /annotated
function() "annotated"

#* @plumber
function(pr) {
  deeper <- pr() %>%
    pr_get("/leaf/<name>", function(name) list(leaf = name))
  items <- pr() %>%
    pr_get("/<id:int>", function(id) list(id = id, class = class(id))) %>%
    pr_post("/", function(req) list(created = req$body)) %>%
    pr_get("/search", function(q = "") paste("searching", q), serializer = serializer_text()) %>%
    pr_mount("/deeper", deeper)
  pr %>%
    pr_get("/added", function(n = 1L) list(n = n)) %>%
    pr_post("/added", function(req) list(posted = req$body)) %>%
    pr_handle(c("PUT", "DELETE"), "/handled", function(req) req$REQUEST_METHOD,
              serializer = serializer_text()) %>%
    pr_get("/typed/<x:double>", function(x) list(x = x, class = class(x))) %>%
    pr_mount("/items", items) %>%
    pr_mount("/other", pr("other.R")) %>%
    pr_static("/static", "./www") %>%
    pr_hook("postroute", function(req, res, value) {
      res$setHeader("X-Hooked", "yes")
      value
    }) %>%
    pr_hook("preroute", function(req, res) {
      # an alias only R knows: plumbline's router cannot see it, R must get the request
      if (identical(req$PATH_INFO, "/alias")) req$PATH_INFO <- "/added"
    })
}

#* @get /after-the-block
function() "annotations below the block still count"
