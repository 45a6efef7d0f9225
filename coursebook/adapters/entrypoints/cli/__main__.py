"""`python -m coursebook.adapters.entrypoints.cli`: the command line without the console script."""

from coursebook.adapters.entrypoints.cli import main

if __name__ == "__main__":
    main()
