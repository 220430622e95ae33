"""Ray job entrypoint of `activessf export`; the same arguments.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python -m jobs.export ...
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
