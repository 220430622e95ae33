"""Ray job entrypoint of the region stage.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- \
        python -m jobs.regions --input s3://bucket/slides --output s3://bucket/run1/regions

Takes the same arguments as ``activessf regions``; under ``ray job submit`` it joins the cluster
through ``RAY_ADDRESS``.
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["regions", *sys.argv[1:]]))
