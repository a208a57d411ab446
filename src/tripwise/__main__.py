import sys

from tripwise.cli import main

sys.exit(main())
