import sys

from syndication.cli import main

sys.exit(main())
