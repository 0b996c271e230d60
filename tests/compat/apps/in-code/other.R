# Mounted by plumber.R's @plumber block under /other: annotated routes of another file.

#* @serializer text
#* @get /hello/<who>
function(who) paste("hello", who)

#* @post /echo
function(req) list(body = req$body)
