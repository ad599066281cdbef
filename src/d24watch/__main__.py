"""`python -m d24watch`. The guard matters: worker processes import this module again."""

import sys

from d24watch.cli import main

if __name__ == "__main__":
    sys.exit(main())
