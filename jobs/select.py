"""Ray job entrypoint of the ``select`` stage: same arguments as ``activessf select``.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python -m jobs.select ...
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["select", *sys.argv[1:]]))
