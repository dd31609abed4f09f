"""Public forms: Tilda, plain HTML forms and form builders posting without an API key."""
