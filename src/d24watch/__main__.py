"""`python -m d24watch`."""

import sys

from d24watch.cli import main

sys.exit(main())
