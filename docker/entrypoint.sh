#!/bin/sh
# Point DVC at the mounted cache volume (a local, git-ignored setting), then run the command.
set -e
if [ -d /dvc-cache ] && [ -d .dvc ]; then
  dvc config --local cache.dir /dvc-cache
fi
exec "$@"
