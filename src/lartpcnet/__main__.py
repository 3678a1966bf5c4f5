import sys

from lartpcnet.cli import main

sys.exit(main())
