"""``python -m bench.peers install [NAME...]`` (runs in arqd's environment)."""

import sys

from bench.peers.install import main

sys.exit(main())
