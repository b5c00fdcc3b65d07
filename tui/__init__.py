"""The faces of teamaccess: the Textual dashboard (app.py, screens/, widgets/) and, beside it in
this package, the Heroku-style command line (cli.py; ``python -m teamaccess.tui`` and the
``teamaccess`` console script start it, and it opens the dashboard when given no command)."""
