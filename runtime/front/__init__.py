"""The front door: the ASGI app uvicorn serves (plumbline's own endpoints in Python, Swagger UI,
static folders, plumber's routing) with its middleware (keys, prefixes, access log) and the
connection layer under it. It hands R's work to the pool (runtime/pool/), never to R itself."""
