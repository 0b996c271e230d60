# Loads unless the file named by PLUMBLINE_TEST_BREAK_FILE exists (to test reload failures).
if (file.exists(Sys.getenv("PLUMBLINE_TEST_BREAK_FILE", "/nonexistent"))) stop("broken on purpose")

#* @serializer text
#* @get /ok
function() "fine"
