"""plumbline server: R users publish plumber APIs to it with rsconnect or `plumbline publish`.

It keeps users, API keys, apps, bundles and versions in a database, stores bundles on disk
by sha256, and deploys through the Backend interface (it knows neither backend).
"""
