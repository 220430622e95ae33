"""Ray job entrypoint of a Tune sweep; the same arguments as ``activessf sweep``.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- \\
        python -m jobs.sweep --config configs/sweep.yaml --set sweep.storage_path=s3://bucket/tune
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
