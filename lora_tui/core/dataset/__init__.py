"""Training data: streaming readers, record shapes, token statistics, the inspection report."""
