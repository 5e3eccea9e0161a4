"""What comes in, and the tables stages hand each other: the manifest, file probing, video decode and
writing, subject-grouped folds, and reading a stage's output table with a clear error."""
