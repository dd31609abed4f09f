"""The admin web page `/admin`: server-rendered pages, their templates and static files."""
