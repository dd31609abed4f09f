"""amoCRM API v4 and OAuth2, library-like: nothing here imports the rest of amogate."""
