import sys

from ticker.cli import main

sys.exit(main())
