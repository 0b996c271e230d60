# Static folders: @assets with its default mount (/public), with a mount path, with a mount
# path written without its leading slash. No filter and no @plumber block: plumbline serves
# these files from Python, so which folder a path reaches must be plumber's choice (an
# endpoint first, then the mounts in order; a mount takes only paths under "<mount>/").

#* @assets ./static
list()

#* @assets ./files /files
list()

#* @assets ./more more
list()

#* An endpoint under a mount wins over the folder
#* @get /public/endpoint
function() "endpoint"

#* @post /files/upload
function() "posted"

#* @get /files
function() "the mount's own path without a slash is not the folder's"
