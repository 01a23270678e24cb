#!/usr/bin/env bash
# Runs the broker under Valgrind memcheck for the integration tests:
#   CAIRN_BIN=tests/integration/valgrind-cairn.sh CAIRN_REAL_BIN=build/cairn pytest ...
# Any memory error, or a definite leak at a clean exit, makes the broker exit
# with status 99, which the tests' clean-stop check reports.
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    "${CAIRN_REAL_BIN:?set CAIRN_REAL_BIN to the broker binary}" "$@"
