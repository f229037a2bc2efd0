"""python -m netnotify: the netnotify command line."""

import sys

from ._cli import main

sys.exit(main())
