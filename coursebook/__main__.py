"""`python -m coursebook`: the command line without the console script."""

from coursebook.adapters.entrypoints.cli import main

main()
