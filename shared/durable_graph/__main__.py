import sys

from durable_graph.cli import main

sys.exit(main())
