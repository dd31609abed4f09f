"""HTTP routes of the sandbox, one module per amoCRM area plus the control API."""
