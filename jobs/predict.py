"""Ray job entrypoint of `activessf predict`; the same arguments.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python -m jobs.predict ...
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
