"""HTTP routes: thin handlers over the services; the envelope lives in `api.errors`."""
