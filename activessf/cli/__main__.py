import sys

from activessf.cli import main

sys.exit(main())
