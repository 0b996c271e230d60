# Sets plumber's own upload limit, which pr_run() would enforce.
options(plumber.maxRequestSize = 100)

#* @serializer text
#* @post /upload
function(req) length(req$bodyRaw)
