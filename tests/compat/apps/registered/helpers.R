# Sourced by plumber.R: a serializer registered outside the file that names it.
plumber::register_serializer("exclaim", function(...) {
  plumber::serializer_content_type("text/plain; charset=UTF-8", function(val) paste0(val, "!"))
})
