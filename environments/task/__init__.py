"""task: tasks in the OpenEvolve / SkyDiscover format (``--env task:PATH``), see docs/tasks.md."""
