#!/usr/bin/env bash
# Runs shellcheck over every shell script of the repository: *.sh files and files whose first
# line is a sh/bash shebang, tracked or new (not ignored). Settings: .shellcheckrc.
# `--list` prints the files instead.
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
while IFS= read -r -d '' f; do
	[ -f "$f" ] || continue
	case "$f" in
	*.sh) files+=("$f") ;;
	*)
		first=$(head -n 1 "$f" 2>/dev/null | tr -d '\0') || true
		case "$first" in
		'#!'*[/\ ]sh | '#!'*[/\ ]bash | '#!'*[/\ ]sh\ * | '#!'*[/\ ]bash\ *) files+=("$f") ;;
		esac
		;;
	esac
done < <(git ls-files -z --cached --others --exclude-standard -- ':!tests/fuzz/corpus')
if [ "${1:-}" = --list ]; then
	printf '%s\n' "${files[@]}"
	exit 0
fi
echo "shellcheck: ${#files[@]} scripts"
shellcheck "${files[@]}"
