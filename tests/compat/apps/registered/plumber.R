# Serializers and parsers the file registers itself, then names in its annotations: in
# top-level code, and in a `#* @plumber` block (plumber evaluates blocks in file order, so a
# registration above an annotation is in place when plumber reads it).

register_serializer("shout", function(..., type = "text/plain; charset=UTF-8") {
  serializer_content_type(type, function(val) toupper(paste(val, collapse = " ")))
})

register_parser("upper", function(...) {
  function(value, ...) toupper(rawToChar(value))
}, fixed = "text/x-upper")

#* @serializer shout
#* @get /shout
function(word = "hello") word

#* @serializer shout list(type = "text/x-shout")
#* @get /shout-typed
function() "typed"

#* @parser upper
#* @post /upper
function(req) list(body = req$body)

#* @plumber
function(pr) {
  register_serializer("wrapped", function(...) {
    serializer_content_type("application/json", function(val) {
      jsonlite::toJSON(list(wrapped = val), auto_unbox = TRUE)
    })
  })
  pr
}

#* @serializer wrapped
#* @get /wrapped
function() list(a = 1)

#* @get /plain
function() "json as usual"

source("helpers.R")  # registers "exclaim" where no annotation reader would look

#* @serializer exclaim
#* @get /exclaim
function() "sourced"
