"""Ray job entrypoint of the whole pipeline; the same arguments as ``activessf run``.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- \\
        python -m jobs.pipeline --config configs/pipeline.yaml --set pipeline.output=/mnt/shared/run1
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
