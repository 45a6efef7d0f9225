"""`python -m benchmarks [--quick] [--store sqlite|postgres] [--json FILE]`."""

from benchmarks.suite import main

main()
