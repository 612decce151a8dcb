"""The operator's view: one HTTP listener for metrics and the web console.

- ``server``: the listener, its routes and access rules.
- ``snapshot``: what the operator sees as plain data (also ``legacy-gateway status --json``).
- ``preview``: thumbnails of recent arrivals.
- ``page.html``: the console page, which polls the JSON API.
"""
