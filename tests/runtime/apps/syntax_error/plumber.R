# A plumber.R with a syntax error on line 5.
#* @get /a
function() {
  1 +
}
)
