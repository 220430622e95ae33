"""Ray job entrypoint of the ``features`` stage: same arguments as ``activessf features``.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python -m jobs.features ...
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
