"""Ray job entrypoint of `activessf compare`; the same arguments.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python -m jobs.compare ...
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
