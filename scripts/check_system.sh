#!/usr/bin/env bash
# Fails early, with what to do, when the machine lacks something setup needs.
set -u
py=${1:-python3.11}
fail() { echo "setup: $*" >&2; exit 1; }
command -v "$py" >/dev/null 2>&1 || fail "'$py' not found. Install Python 3.11 (e.g. 'apt-get install python3.11 python3.11-venv' or pyenv), or run 'make setup PYTHON=/path/to/python3.11'."
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$ver" = "3.11" ] || fail "'$py' is Python $ver; this project needs exactly 3.11 (mediapipe 0.10.21 and the lock are built for it). Run 'make setup PYTHON=/path/to/python3.11'."
"$py" -c 'import venv, ensurepip' 2>/dev/null || fail "'$py' lacks venv/ensurepip. Install it (Debian: 'apt-get install python3.11-venv')."
command -v git >/dev/null 2>&1 || fail "git not found (DVC and run lineage need it). Install it: 'apt-get install git'."
free_gb=$(df -Pk . | awk 'NR==2 {print int($4/1048576)}')
[ "$free_gb" -ge 10 ] || fail "only ${free_gb} GB free here; the environment needs about 8 GB (torch + CUDA wheels). Free some disk."
exit 0
