"""Look at results: the figures of a run and the HTML report of one or several runs."""
