"""The whole ActiveSSF pipeline as one resumable run (``activessf run``)."""
