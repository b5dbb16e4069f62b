"""The ``ssp`` command: a thin typer front end over the :mod:`circuit` library."""
