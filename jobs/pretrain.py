"""Ray job entrypoint of the ``pretrain`` stage: same arguments as ``activessf pretrain``.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python -m jobs.pretrain ...
"""

import sys

from activessf.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
