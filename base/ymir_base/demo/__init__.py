"""The demo: a model that learns the sample data, its pictures, its curve and a true summary."""
