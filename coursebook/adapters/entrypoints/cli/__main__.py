"""`python -m coursebook.adapters.cli`: the command line without the console script."""

from coursebook.adapters.cli import main

if __name__ == "__main__":
    main()
