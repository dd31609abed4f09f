"""Lead deliveries as the people who run amogate see them: one service (view, list, requeue)
shared by the API, the admin page and the CLI, and the in-process signals between the intake
and the worker."""
