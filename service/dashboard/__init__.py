"""The web dashboard: static HTML, CSS and JavaScript modules (static/), served by pages.py.

No build step and nothing from the internet: the browser runs the files as they are, and they
call the public API (docs/API.md) like any other client.
"""
