#!/usr/bin/env bash
# Set up the environment and run the test suite (CPU, tiny models). Extra arguments go to pytest.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile -m "not slow" "$@"
