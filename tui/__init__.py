"""The faces of teamaccess: the Textual dashboard and the Heroku-style command line."""
