"""`python -m topkima` runs the command line."""
import sys

from topkima.cli import main

if __name__ == "__main__":
    sys.exit(main())
