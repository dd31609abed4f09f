"""Who is the operator: the admin password, admin sessions and the sign-in attempt limits.

Used by the admin page (`amogate.web`) and by the routes only an admin may call, such as
`/oauth/authorize` (`amogate.api`), so it depends on neither.
"""
