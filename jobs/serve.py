"""Ray job entrypoint of `activessf serve`; the same arguments.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python -m jobs.serve ...
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
