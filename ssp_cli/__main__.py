"""``python -m ssp_cli``: the same as the ``ssp`` console script."""

from .main import main

main()
