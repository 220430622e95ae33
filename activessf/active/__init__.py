"""Active learning after a finished run: which pool cells to label next, and taking the answers back.

Pure core (numpy, no Ray): ``strategies`` ranks scored pool cells, ``outputs`` writes what a
labeler needs (CSV, contact sheet, Label Studio tasks and config), ``answers`` reads and checks
the labels that come back and ``manifest`` writes them as a new labeled set. The Ray Data scoring
pass is ``activessf.stages.query`` (on Ray Data: ``activessf.distributed.query``).
"""

# What a labeler answers for a crop that is no cell of any class (a fragment, debris, a cell
# type outside the label set). Kept as a negative for the selection, never as a class.
NOT_A_CELL = "not a target cell"
