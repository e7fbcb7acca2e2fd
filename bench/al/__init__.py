"""The active-learning benchmark package: datasets, the mining loop through the images, and its report."""
