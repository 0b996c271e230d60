"""R packages for an app folder: `requirements` reads its manifest.json or renv.lock (pure
data, the app spec uses it), `library` installs what R lacks into a shared,
content-addressed library. Used by the runtime (`plumbline serve DIR`, the pod's
`plumbline prepare`) and the platform (`plumbline up`, the server), so it imports neither.
"""
