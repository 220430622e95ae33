"""Ray job entrypoint of `activessf query`; the same arguments.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python -m jobs.query ...
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["query", *sys.argv[1:]]))
