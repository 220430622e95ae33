"""Ray job entrypoint of `activessf label`; the same arguments.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python -m jobs.label ...
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["label", *sys.argv[1:]]))
