"""Stage entry points: each reads its inputs, decides what is stale, calls the Ray layer
(``activessf.distributed``) and writes its outputs. ``activessf.pipeline`` and the CLI call these."""
