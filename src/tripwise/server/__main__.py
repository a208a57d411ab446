"""``python -m tripwise.server``: same as ``tripwise serve``."""

import sys

from tripwise.server.cli import serve_main

sys.exit(serve_main(sys.argv[1:]))
