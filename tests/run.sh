#!/usr/bin/env bash
# The whole test suite (quick start, command 2; .ci/run runs exactly this):
# builds with gcc, clang and gcc+ASan+UBSan (-Werror), then runs the unit tests of every
# build, the fuzz targets over their corpora, and the integration tests (as root, on the
# real kernel) with the gcc and the sanitizer builds. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
passed=0 failed=0 skipped=0
failures=() # every "not ok" line, repeated at the end where a log's tail shows them
log=$(mktemp -d /tmp/agentcell-tests.XXXXXX)

result() { # result ok|fail "description" | result skip "description" "reason"
	case "$1" in
	ok) passed=$((passed + 1)); echo "ok - $2" ;;
	skip) skipped=$((skipped + 1)); echo "ok - $2 # SKIP $3" ;;
	*) failed=$((failed + 1)); failures+=("not ok - $2"); echo "not ok - $2" ;;
	esac
}

# Counts the "ok"/"not ok" lines of a TAP-like stream, echoing them with a prefix.
tally() { # tally PREFIX < output
	local line desc diag=0
	while IFS= read -r line; do
		# The diagnostics under a failure (a few lines) go with it into the summary.
		if [ "$diag" -gt 0 ] && [[ "$line" == "#"* || "$line" == " "* ]]; then
			diag=$((diag - 1)); failures+=("  $line")
		else
			diag=0
		fi
		case "$line" in
		"not ok"*" # SKIP"* | "ok"*" # SKIP"* | "ok"*" # skip"*)
			# cmocka 1.1 writes a skipped test as "not ok N # SKIP name".
			desc=${line#not }; desc=${desc#ok}; desc=${desc#"${desc%%[!0-9 ]*}"}; desc=${desc#- }
			skipped=$((skipped + 1)); echo "ok - $1: $desc" ;;
		"not ok"*)
			desc=${line#not ok}; desc=${desc#"${desc%%[!0-9 ]*}"}; desc=${desc#- }
			failed=$((failed + 1)); failures+=("not ok - $1: $desc") diag=8
			echo "not ok - $1: $desc" ;;
		"ok"*)
			desc=${line#ok}; desc=${desc#"${desc%%[!0-9 ]*}"}; desc=${desc#- }
			passed=$((passed + 1)); echo "ok - $1: $desc" ;;
		"#"* | " "*) echo "$line" ;;
		esac
	done
}

if ! bash scripts/install-deps.sh; then
	result fail "install dependencies"
	echo "$passed passed, $failed failed"
	exit 1
fi

builds=("gcc:" "clang:CC=clang" "gcc-san:SAN=1")
for b in "${builds[@]}"; do
	name=${b%%:*} args=${b#*:}
	# shellcheck disable=SC2086 # args: make arguments, none or several
	if make -j"$(nproc)" $args all fuzz >"$log/build-$name.txt" 2>&1; then
		result ok "build with $name (-Wall -Wextra -Werror)"
	else
		result fail "build with $name"; tail -20 "$log/build-$name.txt" | sed 's/^/    # /'
	fi
done
# shellcheck disable=SC2046 # one argument per file; the tree's file names have no blanks
if clang-format --dry-run -Werror $(git ls-files '*.c' '*.h') >"$log/format.txt" 2>&1; then
	result ok "clang-format clean"
else
	result fail "clang-format clean"; head -20 "$log/format.txt" | sed 's/^/    # /'
fi
# Lint (make lint's other two parts): they skip, visibly, only where the tool is missing.
if ! command -v clang >/dev/null; then
	result skip "clang --analyze clean" "clang is not installed"
elif make -j"$(nproc)" -k analyze >"$log/analyze.txt" 2>&1; then
	result ok "clang --analyze clean (make analyze)"
else
	result fail "clang --analyze clean (make analyze)"
	grep -E 'warning:|error:' "$log/analyze.txt" | head -20 | sed 's/^/    # /'
fi
if ! command -v shellcheck >/dev/null; then
	result skip "shellcheck clean" "shellcheck is not installed"
elif bash scripts/lint-shell.sh >"$log/shellcheck.txt" 2>&1; then
	result ok "shellcheck clean ($(head -1 "$log/shellcheck.txt" | sed 's/^shellcheck: //'))"
else
	result fail "shellcheck clean"; head -30 "$log/shellcheck.txt" | sed 's/^/    # /'
fi

for name in gcc clang gcc-san; do
	for t in build/"$name"/tests/test_*; do
		[ -x "$t" ] || continue
		tally "unit/$name/$(basename "$t")" < <(CMOCKA_MESSAGE_OUTPUT=TAP "$t" 2>&1)
	done
done

# The runtime's unit tests once more as on a kernel without IA32 emulation (int $0x80
# traps): their 32-bit checks must become a visible skip, and nothing else may change.
if [ -x build/gcc/tools/no_ia32 ] && [ -x build/gcc/tests/test_runtime ]; then
	tally "unit/gcc/test_runtime (no IA32 emulation)" < <(CMOCKA_MESSAGE_OUTPUT=TAP build/gcc/tools/no_ia32 build/gcc/tests/test_runtime 2>&1)
fi

for f in build/gcc-san/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	t=$(basename "$f")
	if out=$("$f" "tests/fuzz/corpus/$t" 2>&1); then
		result ok "fuzz replay $t ($(echo "$out" | tail -1))"
	else
		result fail "fuzz replay $t"; echo "$out" | tail -20 | sed 's/^/    # /'
	fi
done

if [ "$(id -u)" != 0 ]; then
	result fail "integration tests need root"
else
	# test_k8s_fake checks the test API server against kubectl: agentcell only runs the
	# server's pods there, so a second (sanitizer) pass would check nothing new.
	# test_k8s_run and test_nomad_run spend their ~2.5 minutes each waiting on the test
	# servers' pod and job clocks, not in agentcell's code (which the sanitizer pass of
	# the other k8s/nomad suites and the unit tests cover): once, to keep CI near 40 min.
	once=" test_k8s_fake test_nomad_fake test_k8s_run test_nomad_run "
	for name in gcc gcc-san; do
		bin=$root/build/$name/agentcell
		for t in tests/integration/test_*.sh; do
			[ -f "$t" ] || continue
			base=$(basename "$t" .sh)
			[ "$name" = gcc ] || [[ "$once" != *" $base "* ]] || continue
			t0=$SECONDS
			tally "$name/$base" < <(AGENTCELL=$bin timeout 900 bash "$t" 2>&1)
			echo "# $name/$base took $((SECONDS - t0)) s"
		done
	done
fi

rm -rf "$log"
if [ "$failed" != 0 ]; then
	echo "# the failures again:"
	printf '%s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
