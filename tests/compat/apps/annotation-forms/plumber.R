# Every way plumber 1.2.1 accepts an endpoint annotation (plumber's plumbBlock): both comment
# markers, with and without spaces, paths with and without a leading slash, typed and untyped
# path parameters, several verbs on one function, serializers with arguments, the deprecated
# shorthand serializers, @param / @response / @tag variants. No filter and no @plumber block:
# plumbline answers 404 and 405 itself here, so its routing must be plumber's.

#*@get /nospace
function() "no space after #*"

#'@get /tick-nospace
function() "no space after #'"

#' @get /tick
function() "roxygen marker"

#*     @get      /wide
function() "many spaces"

#* @get items
function() "no leading slash"

#' Mixed markers in one block
#* @serializer text
#'	@get	/tabs
function() "tabs between the tokens, #' and #* mixed"

#* @GET /upper-case-verb
function() "not an endpoint: plumber's tags are lower case"

#* @get /
function() "root"

#* A summary line
#* and a description,
# a plain comment in the block (skipped),

#* on three lines.
#* @get /described

function() "blank lines between the block and the function"

#* @get /multi
#* @post /multi
#* @put /multi
function(req) paste("verb", req$REQUEST_METHOD)

#* @use /any
function(req) paste("use", req$REQUEST_METHOD)

#* @delete /gone
function() "deleted"

#* @patch /patched
function() "patched"

#* @head /head-only
function() "head"

#* @options /opts
function() "options"

#* @get /untyped/<id>
function(id) list(id = id, class = class(id))

#* @get /typed/<id:int>
function(id) list(id = id, class = class(id))

#* @get /number/<x:double>
function(x) list(x = x, class = class(x))

#* @get /numeric/<x:numeric>
function(x) list(x = x, class = class(x))

#* @get /flag/<b:bool>
function(b) list(b = b, class = class(b))

#* @get /logical/<b:logical>
function(b) list(b = b, class = class(b))

#* @get /chr/<s:chr>
function(s) list(s = s)

#* @get /many/<ids:[int]>
function(ids) list(ids = ids, n = length(ids))

#* @get /unknown-type/<u:blob>
function(u) list(u = u)

#* An untyped parameter takes the type of the argument's default (integer here)
#* @get /by-default/<n>
function(n = 1L) list(n = n, class = class(n))

#* @get /by-default-double/<n>
function(n = 2.5) list(n = n, class = class(n))

#* @get /two/<a:int>/and/<b>
function(a, b) list(a = a, b = b)

#* @get /dotted/<.hidden>
function(.hidden) list(hidden = .hidden)

#* plumber does not escape the literal part of a path: "." matches any character
#* @get /a.b
function() "dot"

#* @get /trailing/
function() "with a trailing slash"

#* @get /first-wins
function() "first"

#* @get /first-wins
function() "second"

#* @get /shadow/<id:int>
function(id) "dynamic first"

#* @get /shadow/42
function() "static, shadowed"

#* @serializer json list(auto_unbox = TRUE, digits = 2)
#* @get /json-args
function() list(pi = pi, one = 1)

#* @serializer unboxedJSON
#* @get /unboxed
function() list(a = 1, b = "x")

#* @serializer contentType list(type = "text/csv; charset=UTF-8")
#* @get /content-type
function() "a,b\n1,2\n"

#* @serializer text
#* @get /text
function() c("a", "b")

#* @serializer html
#* @get /html
function() "<b>bold</b>"

#* @serializer print
#* @get /print
function() list(a = 1)

#* @serializer format
#* @get /format
function() 3.14159

#* @serializer csv list(na = "-")
#* @get /csv-args
function() data.frame(a = c(1, NA), b = c("x", "y"))

#* @json(auto_unbox = TRUE)
#* @get /short-json
function() list(a = 1)

#* @html
#* @get /short-html
function() "<i>shorthand</i>"

#* @param x:int* A required integer
#* @param y:[dbl] Some numbers
#* @param z
#* @param w* required, no type
#* @param flag:bool
#* @response 200 All fine
#* @response 400 Bad input
#* @tag alpha
#* @tag "two words"
#* @tag 'single quoted'
#* @get /documented
function(x, y = 1, z = "a", flag = FALSE, w = NULL) list(x = x, y = y, z = z, flag = flag)

#* @parser json
#* @post /json-only
function(req) list(body = req$body)

#* @parser text
#* @parser octet
#* @post /text-or-octet
function(req) list(type = class(req$body), n = length(req$body))

#* @parser form
#* @post /form-only
function(a = NULL) list(a = a)

#* @post /echo-args
function(...) list(...)

named <- function() "an assigned function"

#* @get /assigned
assigned <- function() "assigned while annotated"
