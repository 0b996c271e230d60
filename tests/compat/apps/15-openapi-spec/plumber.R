# plumber's 15-openapi-spec example builds this router in its entrypoint.R with
# pr$handle("GET", "/sum", handler, serializer = serializer_json()); plumbline serves
# annotated files, so the same endpoint is written as an annotation here.

#* Sum numbers
#* @serializer json
#* @get /sum
function(num) {
  sum(as.integer(num))
}
