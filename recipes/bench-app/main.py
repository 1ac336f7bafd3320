# The application of recipes/bench.toml: bench/run.sh edits this file to
# measure a rebuild after a one-file change.
print("hello from stele's bench image")
