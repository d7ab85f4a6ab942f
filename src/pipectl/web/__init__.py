"""`pipectl serve`: the HTTP API and the web health view, a thin skin over `pipectl.Client`.

Needs the `web` extra (pip install 'pipectl[web]'); nothing outside this package imports it."""
