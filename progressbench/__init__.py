"""progressbench: progress-oriented benchmarks for program-evolving agents."""

import pluggy

__version__ = "0.1.0"

# Plugins (built-in and third-party alike) mark their hook implementations with this.
hookimpl = pluggy.HookimplMarker("progressbench")
