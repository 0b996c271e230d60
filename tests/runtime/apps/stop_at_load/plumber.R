# A plumber.R that fails while loading.
x <- 1
stop("database unreachable")

#* @get /a
function() 1
