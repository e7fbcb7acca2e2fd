"""The active-learning benchmark: datasets, the loop through the images, the evaluation and the report."""
