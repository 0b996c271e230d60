"""plumbline: serve unchanged plumber.R APIs fast and safely, from a laptop to Kubernetes."""

__version__ = "0.1.0"
