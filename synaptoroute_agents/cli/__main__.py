"""``python -m synaptoroute_agents.cli``: the ``synaptoroute`` command."""

import sys

from . import main

sys.exit(main())
