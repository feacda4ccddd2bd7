import sys

from sarchat_bench.cli import main

sys.exit(main())
