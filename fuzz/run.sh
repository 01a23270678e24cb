#!/usr/bin/env bash
# Build and run the libFuzzer harnesses fuzz/fuzz_<name>.c.
#
#   bash fuzz/run.sh smoke    build, then fuzz each harness for a bounded time
#   bash fuzz/run.sh replay   build, then run each harness once over its corpus
#   bash fuzz/run.sh build    build only
#
# Build: every src/**/*.c except src/main.c is compiled with clang into
# build-fuzz/obj/ (a file that does not compile is skipped with a warning, so
# one broken module does not stop the others) and archived into
# build-fuzz/libcairn-fuzz.a. Each harness links against that archive, so it
# pulls in only the objects it needs; unresolved symbols in unused objects do
# not matter, and new harnesses need no source list.
#
# Smoke: FUZZ_SECONDS (default 60) is split evenly over the harnesses, at
# least 10 s each. Each runs on a fresh copy of fuzz/corpus/<name>/ (new
# inputs stay in build-fuzz/, the committed corpus is not touched), with
# fuzz/<name>.dict if present. Crash/leak/timeout inputs are written to
# build-fuzz/artifacts/<name>/; add them to fuzz/corpus/<name>/ once fixed.
# Exit status is non-zero if any harness crashed or failed to build.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-smoke}
case $mode in smoke | replay | build) ;; *)
    echo "usage: bash fuzz/run.sh smoke|replay|build" >&2
    exit 2
    ;;
esac

CLANG=${CLANG:-clang}
OUT=build-fuzz
# -fno-sanitize-recover makes UBSan findings fatal, so they count as crashes.
CFLAGS=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11
    -D_GNU_SOURCE -Isrc -g -O1)
LIBS=(-lz -lsnappy -llz4 -lzstd -lraft -lhttp_parser -ljansson -lcurl -lssl -lcrypto -lpcre2-8 -pthread)

mkdir -p "$OUT/obj"

# ---- library archive ----
newest_header=$(find src -name '*.h' -printf '%T@\n' | sort -n | tail -1)
objs=()
while IFS= read -r src; do
    obj="$OUT/obj/${src%.c}.o"
    mkdir -p "$(dirname "$obj")"
    if [[ ! -f $obj || $src -nt $obj ]] ||
        awk -v h="$newest_header" -v o="$(stat -c %Y "$obj")" 'BEGIN { exit !(h > o) }'; then
        if ! "$CLANG" "${CFLAGS[@]}" -c "$src" -o "$obj" 2>"$obj.log"; then
            echo "fuzz: warning: $src does not compile, left out (see $obj.log)" >&2
            rm -f "$obj"
            continue
        fi
    fi
    objs+=("$obj")
done < <(find src -name '*.c' ! -path src/main.c | sort)
rm -f "$OUT/libcairn-fuzz.a"
ar rcs "$OUT/libcairn-fuzz.a" "${objs[@]}"

# ---- harnesses ----
harnesses=()
failed=0
for h in fuzz/fuzz_*.c; do
    [[ -e $h ]] || continue
    name=$(basename "$h" .c)
    name=${name#fuzz_}
    if ! "$CLANG" "${CFLAGS[@]}" "$h" "$OUT/libcairn-fuzz.a" "${LIBS[@]}" -o "$OUT/fuzz_$name"; then
        echo "fuzz: FAIL: $h does not build" >&2
        failed=1
        continue
    fi
    harnesses+=("$name")
done
echo "fuzz: built ${#harnesses[@]} harness(es): ${harnesses[*]:-none}"
[[ $mode == build ]] && exit $failed
[[ ${#harnesses[@]} -eq 0 ]] && exit $failed

# ---- run ----
total=${FUZZ_SECONDS:-60}
per=$((total / ${#harnesses[@]}))
((per < 10)) && per=10

for name in "${harnesses[@]}"; do
    work="$OUT/corpus/$name"
    art="$OUT/artifacts/$name"
    rm -rf "$work"
    mkdir -p "$work" "$art"
    if [[ -d fuzz/corpus/$name ]]; then
        cp -r "fuzz/corpus/$name/." "$work/"
    fi
    args=(-max_len=1048576 -rss_limit_mb=2048 -timeout=25 -print_final_stats=1
        "-artifact_prefix=$art/")
    [[ -f fuzz/$name.dict ]] && args+=("-dict=fuzz/$name.dict")
    log="$OUT/fuzz_$name.log"
    if [[ $mode == replay ]]; then
        shopt -s nullglob
        files=("$work"/*)
        shopt -u nullglob
        if [[ ${#files[@]} -eq 0 ]]; then
            echo "fuzz: $name: empty corpus, nothing to replay"
            continue
        fi
        set +e
        "./$OUT/fuzz_$name" "${args[@]}" "${files[@]}" >"$log" 2>&1
        rc=$?
        set -e
        echo "fuzz: $name: replayed ${#files[@]} input(s), exit $rc"
    else
        set +e
        "./$OUT/fuzz_$name" "${args[@]}" -max_total_time="$per" "$work" >"$log" 2>&1
        rc=$?
        set -e
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        corpus=$(find "$work" -type f | wc -l)
        echo "fuzz: $name: ${per}s, ${execs:-?} execs, corpus ${corpus} files, exit $rc"
    fi
    if ((rc != 0)); then
        failed=1
        echo "fuzz: FAIL: $name crashed; log $log, inputs in $art/" >&2
        grep -E -m5 'ERROR|runtime error|SUMMARY|deadly signal' "$log" >&2 || true
    fi
done
exit $failed
