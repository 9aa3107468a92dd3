#!/usr/bin/env bash
# Code runs (`run --language L --code C`, "language"/"code" of POST /run and of the MCP
# sandbox_run tool): real code in real sandboxes on the native backend (the host base's
# interpreters), quoting that must reach the interpreter untouched, exit codes, code files,
# usage errors, a missing interpreter, agentcell.toml's [languages], and on a private Podman
# service the language's image (skipped visibly when Podman cannot be set up).
. "$(dirname "$0")/lib.sh"
. "$AC_REPO/scripts/podman-setup.sh"
ac_setup

# A language whose interpreter the host lacks (the sandbox's host base then lacks it too).
MISSING=
for l in php ruby; do
	if ! command -v "$l" >/dev/null 2>&1 && [ ! -e "/usr/bin/$l" ]; then
		MISSING=$l
		break
	fi
done

# ---------------------------------------------------------------- CLI: native backend

if [ -x /usr/bin/python3 ]; then
	acx run --language python --code 'print(6*7)'
	check_rc "python: exit 0" 0
	check_out "python: print(6*7) prints 42" 42
	acx run --language PYTHON3 --code 'print(6*7)'
	check_out "language names ignore case (PYTHON3)" 42
	acx run --language python --code 'import sys; sys.exit(3)'
	check_rc "python: sys.exit(3) exits 3" 3
	acx run --language python --code 'import sys; sys.stderr.write("e\n"); print("o")'
	check_out "python: stdout alone on stdout" o
	check_eq "python: stderr alone on stderr" e "$ERR"
	# Quotes of both kinds, backslashes, newlines, $(...) and backticks: a shell between us
	# and python would expand or choke on them; python must get the text as it is.
	HOSTILE=$'s = "it\'s \\"q\\" $(echo pwned) `echo x` $HOME ; exit 9"\nprint(s)\nprint(len("""a\nb"""))'
	acx run --language python --code "$HOSTILE"
	check_rc "python: quoting-hostile code exits 0" 0
	check_eq "python: quotes, \$(...), backticks and \$HOME reach python unexpanded" \
		"it's \"q\" \$(echo pwned) \`echo x\` \$HOME ; exit 9"$'\n'"3" "$OUT"
	acx run --language python --code 'import sys; print(len(sys.argv), repr(sys.argv[0]))'
	check_out "python: the code is python3 -c's argument (argv is ['-c'])" "1 '-c'"
	acx run -i --language python --code 'import sys; print(sys.stdin.read().upper())' <<<"abc"
	check_out "python -i: stdin reaches the code" ABC
	acx run --timeout 1 --language python --code 'import time; time.sleep(30)'
	check_rc "python --timeout 1: exit 124" 124
	# --code-file
	printf 'x = 6\nprint(x * 7)\nprint("line \\"two\\"")\n' >"$AC_TMP/code.py"
	acx run --language python --code-file "$AC_TMP/code.py"
	check_out "python --code-file FILE" $'42\nline "two"'
	acx run --language python --code-file - <"$AC_TMP/code.py"
	check_out "python --code-file - reads standard input" $'42\nline "two"'
else
	skip "python code runs" "the host has no /usr/bin/python3"
fi

acx run --language sh --code 'echo $((6*7))'
check_out "sh: echo \$((6*7)) prints 42" 42
acx run --language shell --code 'set -- a b; echo "$#:$1$2"; exit 4'
check_rc "shell: the code's exit code" 4
check_out "shell: expanded by the shell" "2:ab"
acx run --language bash --code 'echo bash-alias'
check_out "bash: runs as shell code" bash-alias
acx run --language cobol --code 'echo $((6*7))'
check_out "a language the table does not know runs as shell code" 42

if command -v node >/dev/null && [ -x /usr/bin/node ]; then
	acx run --language node --code 'console.log(6*7)'
	check_out "node: console.log(6*7) prints 42" 42
	acx run --language JavaScript --code 'console.log(`${"it'"'"'s"} $(x)`); process.exit(5)'
	check_rc "javascript: process.exit(5) exits 5" 5
	check_out "javascript: template literal and \$(x) reach node unexpanded" "it's \$(x)"
	acx run --language js --code 'console.log(process.argv.length)'
	check_out "js: the code is node -e's argument" 1
else
	skip "node code runs" "the host has no /usr/bin/node"
fi

if [ -x /usr/bin/perl ]; then
	acx run --language perl --code 'print 6*7, "\n"; exit 2'
	check_rc "perl: exit 2" 2
	check_out "perl: prints 42" 42
else
	skip "perl code runs" "the host has no /usr/bin/perl"
fi

if [ -n "$MISSING" ]; then
	acx run --language "$MISSING" --code 'x'
	check_rc "missing interpreter ($MISSING): exit 127 as a shell would" 127
	check_error_line "missing interpreter: one error line"
	check_contains "missing interpreter: the line names it and the image" "$ERR" \
		"agentcell: $MISSING is not installed in the sandbox's image (host base): "
else
	skip "a missing interpreter" "the host has both php and ruby"
fi

# ---------------------------------------------------------------- CLI: usage errors

usage_error() { # usage_error "desc" needle ARGS...
	local desc=$1 needle=$2
	shift 2
	acx "$@"
	check_rc "$desc: exit 2" 2
	check_error_line "$desc: one error line"
	check_contains "$desc: says why" "$ERR" "$needle"
}
usage_error "--code and a command" "exclude each other" run --language sh --code 'echo x' -- echo y
usage_error "--code and --code-file" "--code and --code-file exclude each other" \
	run --language sh --code 'echo x' --code-file "$AC_TMP/nothing"
usage_error "--code without --language" "--code needs --language" run --code 'echo x'
usage_error "--language without code" "--language needs --code" run --language python
usage_error "--language with a command" "--language needs --code" run --language python -- echo
usage_error "empty --code" "--code is empty" run --language sh --code ''
usage_error "malformed language name" "invalid --language '1x'" run --language 1x --code 'x'
usage_error "run with neither" "no command given" run
usage_error "--code-file - with -i" "cannot also be the program's (-i)" \
	run -i --language sh --code-file -
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' 'a' >"$AC_TMP/big.code"
usage_error "--code-file over 1 MiB" "too large" run --language sh --code-file "$AC_TMP/big.code"
printf 'echo a\0b\n' >"$AC_TMP/nul.code"
usage_error "--code-file with a NUL byte" "NUL" run --language sh --code-file "$AC_TMP/nul.code"
printf 'echo \xff\xfe\n' >"$AC_TMP/latin.code"
usage_error "--code-file not UTF-8" "not valid UTF-8" run --language sh --code-file "$AC_TMP/latin.code"
acx run --language sh --code-file "$AC_TMP/no-such-file"
check_rc "--code-file of a missing file: exit 1" 1
check_error_line "--code-file of a missing file: one error line"
acx run --help
check_contains "run --help lists --language" "$OUT" "--language LANG"
check_contains "run --help lists --code-file" "$OUT" "--code-file FILE"
check_eq "no sandbox is left by the runs" "" "$(ac_names)"

# ---------------------------------------------------------------- agentcell.toml [languages]

mkdir -p "$AC_TMP/cfg"
cfg_case() { # cfg_case "desc" toml-text needle
	printf '%s\n' "$2" >"$AC_TMP/cfg/agentcell.toml"
	acx run --config "$AC_TMP/cfg/agentcell.toml" --language sh --code 'echo cfg'
	check_rc "[languages] $1: refused (exit 2)" 2
	check_error_line "[languages] $1: one error line"
	check_contains "[languages] $1: names the file" "$ERR" "$AC_TMP/cfg/agentcell.toml"
	check_contains "[languages] $1: says what is wrong" "$ERR" "$3"
}
cfg_case "bad image reference" $'[languages]\npython = "-oops"' "languages.python: '-oops' is not an image reference"
cfg_case "an image with a space" $'[languages]\npython = "a b"' "is not an image reference"
cfg_case "wrong value type" $'[languages]\npython = 3' "languages.python must be a string"
cfg_case "array value" $'[languages]\nnode = ["node:20"]' "languages.node must be a string"
cfg_case "malformed name" $'[languages]\n"1x" = "img"' "languages.1x: not a language name"
cfg_case "not a table" 'languages = "python:3.12"' "[languages] must be a table"
cfg_case "one name twice" $'[languages]\npython = "a"\nPython = "b"' "is given twice"
printf '[languages]\npython = "python:3.11"\nsh = "registry.example:5000/team/sh@sha256:0123"\n' \
	>"$AC_TMP/cfg/agentcell.toml"
acx run --config "$AC_TMP/cfg/agentcell.toml" --language sh --code 'echo native'
check_rc "[languages] valid: accepted" 0
check_out "[languages] is for container backends: native still uses the host base" native

# ---------------------------------------------------------------- HTTP API

post() { # post PATH JSON: sets HB (body) and HS (status)
	local out
	out=$(curl -s -m 60 -w '\n%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$2" "http://127.0.0.1:$SRV_PORT$1")
	HS=${out##*$'\n'}
	HB=${out%$'\n'*}
}
if start_server codeapi -- --port 0; then
	pass "serve started on port $SRV_PORT"
	post /run '{"language":"python","code":"print(6*7)"}'
	check_eq "POST /run language+code: 200" 200 "$HS"
	check_eq "POST /run language+code: output 42" "42" "$(jq -r .data.output <<<"$HB" | head -1)"
	post /run '{"language":"sh","code":"echo $((6*7)); exit 3","full":true}'
	check_eq "POST /run sh, full: exit code 3" "3" "$(jq -r .data.exit_code <<<"$HB")"
	check_eq "POST /run sh, full: stdout 42" "42" "$(jq -r .data.stdout <<<"$HB" | head -1)"
	post /run "$(jq -cn --arg c "$HOSTILE" '{language: "Python", code: $c, full: true}')"
	check_eq "POST /run: quoting-hostile python reaches python unexpanded" \
		"it's \"q\" \$(echo pwned) \`echo x\` \$HOME ; exit 9"$'\n'"3" "$(jq -r .data.stdout <<<"$HB")"
	post /run '{"language":"python","code":"import sys; sys.exit(3)"}'
	check_eq "POST /run code exiting 3: 409 as a failed command" 409 "$HS"
	check_eq "POST /run code exiting 3: exit_code 3" 3 "$(jq -r .exit_code <<<"$HB")"
	post /run '{"language":"python","code":"print(1)","command":["echo"]}'
	check_eq "POST /run command and code: 400" 400 "$HS"
	check_contains "POST /run command and code: says so" "$HB" "either 'command' or 'language' and 'code'"
	post /run '{}'
	check_eq "POST /run neither: 400" 400 "$HS"
	check_contains "POST /run neither: says what to give" "$HB" "'command' is required: an array of strings (or 'language' and 'code'"
	post /run '{"language":"python"}'
	check_eq "POST /run language alone: 400" 400 "$HS"
	check_contains "POST /run language alone: needs code" "$HB" "'language' needs 'code'"
	post /run '{"code":"print(1)"}'
	check_eq "POST /run code alone: 400" 400 "$HS"
	check_contains "POST /run code alone: needs language" "$HB" "'code' needs 'language'"
	post /run '{"language":"python","code":""}'
	check_eq "POST /run empty code: 400" 400 "$HS"
	check_contains "POST /run empty code: says so" "$HB" "'code' is empty"
	post /run '{"language":"no such","code":"x"}'
	check_eq "POST /run malformed language: 400" 400 "$HS"
	post /run '{"language":5,"code":"x"}'
	check_eq "POST /run language not a string: 400" 400 "$HS"
	post /run '{"language":"python","code":"a\u0000b"}'
	check_eq "POST /run code with NUL: 400" 400 "$HS"
	if [ -n "$MISSING" ]; then
		post /run "{\"language\":\"$MISSING\",\"code\":\"x\"}"
		check_eq "POST /run missing interpreter: 409 (the command could not run)" 409 "$HS"
		check_eq "POST /run missing interpreter: exit_code 127" 127 "$(jq -r .exit_code <<<"$HB")"
		check_contains "POST /run missing interpreter: names it and the image" "$HB" \
			"$MISSING is not installed in the sandbox's image (host base)"
	fi
	SSE=$(curl -s -N -m 60 -H 'Content-Type: application/json' \
		--data-binary '{"language":"sh","code":"echo $((6*7))"}' "http://127.0.0.1:$SRV_PORT/run/stream")
	check_contains "POST /run/stream language+code: output event with 42" "$SSE" '"data":"42\n"'
	check_contains "POST /run/stream language+code: done with exit 0" "$SSE" '"exit_code":0'
	post /batch/run '{"commands":[{"language":"sh","code":"echo $((6*7))"},{"command":["echo","b"]}]}'
	check_eq "POST /batch/run with a code item: 200" 200 "$HS"
	check_eq "POST /batch/run: the code item's output" "42" "$(jq -r '.data.results[0].output' <<<"$HB" | head -1)"
	check_eq "POST /batch/run: the command item's output" "b" "$(jq -r '.data.results[1].output' <<<"$HB" | head -1)"
	OPENAPI=$(curl -s -m 10 "http://127.0.0.1:$SRV_PORT/openapi.json")
	check_eq "openapi.json: RunRequest has language and code" "true true" \
		"$(jq -r '[.components.schemas.RunRequest.properties | has("language"), has("code")] | map(tostring) | join(" ")' <<<"$OPENAPI")"
	stop_server codeapi "$SRV_PID"
else
	fail "serve started" "$(tail -5 "$AC_TMP/codeapi.err")"
fi

# ---------------------------------------------------------------- MCP (stdio)

init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
mcp_call() { # mcp_call ID ARGUMENTS-JSON: the reply line of a sandbox_run call
	printf '%s\n' "$init" "{\"jsonrpc\":\"2.0\",\"id\":$1,\"method\":\"tools/call\",\"params\":{\"name\":\"sandbox_run\",\"arguments\":$2}}" |
		timeout -k 5 60 "$AGENTCELL" mcp 2>>"$AC_TMP/mcp.err" | jq -c "select(.id == $1)"
}
R=$(mcp_call 2 '{"language":"sh","code":"echo $((6*7)); exit 2"}')
check_eq "MCP sandbox_run language+code: stdout 42" "42" "$(jq -r .result.structuredContent.stdout <<<"$R" | head -1)"
check_eq "MCP sandbox_run language+code: exit_code 2" "2" "$(jq -r .result.structuredContent.exit_code <<<"$R")"
if [ -x /usr/bin/python3 ]; then
	R=$(mcp_call 3 "$(jq -cn --arg c "$HOSTILE" '{language: "python", code: $c}')")
	check_eq "MCP sandbox_run: quoting-hostile python reaches python unexpanded" \
		"it's \"q\" \$(echo pwned) \`echo x\` \$HOME ; exit 9"$'\n'"3" "$(jq -r .result.structuredContent.stdout <<<"$R")"
fi
R=$(mcp_call 4 '{"language":"sh","code":"echo x","command":"echo y"}')
check_eq "MCP command and code: -32602" "-32602" "$(jq -r .error.code <<<"$R")"
check_contains "MCP command and code: says so" "$R" "either 'command' or 'language' and 'code'"
R=$(mcp_call 5 '{}')
check_eq "MCP neither: -32602" "-32602" "$(jq -r .error.code <<<"$R")"
check_contains "MCP neither: names both ways" "$R" "missing required field 'command' (or 'language' and 'code'"
R=$(mcp_call 6 '{"language":"sh"}')
check_contains "MCP language alone: -32602 needs code" "$R" "'language' needs 'code'"
R=$(mcp_call 7 '{"language":"sh","code":""}')
check_eq "MCP empty code: -32602 (schema minLength)" "-32602" "$(jq -r .error.code <<<"$R")"
R=$(mcp_call 8 '{"language":"1x","code":"x"}')
check_eq "MCP malformed language: -32602" "-32602" "$(jq -r .error.code <<<"$R")"
if [ -n "$MISSING" ]; then
	R=$(mcp_call 9 "{\"language\":\"$MISSING\",\"code\":\"x\"}")
	check_eq "MCP missing interpreter: isError" "true" "$(jq -r .result.isError <<<"$R")"
	check_eq "MCP missing interpreter: exit_code 127" "127" "$(jq -r .result.structuredContent.exit_code <<<"$R")"
	check_contains "MCP missing interpreter: names it and the image" "$R" \
		"$MISSING is not installed in the sandbox's image (host base)"
fi
R=$(printf '%s\n' "$init" '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' | timeout -k 5 60 "$AGENTCELL" mcp 2>/dev/null | jq -c 'select(.id == 2)')
check_eq "MCP tools/list: sandbox_run has language and code" "true true" \
	"$(jq -r '.result.tools[] | select(.name == "sandbox_run") | .inputSchema.properties | [has("language"), has("code")] | map(tostring) | join(" ")' <<<"$R")"
check_eq "no sandbox is left by the API and MCP runs" "" "$(ac_names)"
check_eq "MCP: no sanitizer report on the server's stderr" "" "$(grep -E "$SAN_RE" "$AC_TMP/mcp.err")"

# ---------------------------------------------------------------- container backend (Podman)

if podman_setup; then
	at_exit 'podman_teardown'
	pass "podman service on $DOCKER_HOST with image $PODMAN_IMAGE"
	# The service has no registry: an image that is not local fails the run, naming it.
	acx run --backend podman --language python --code 'print(1)'
	check_ne "podman: python without --image uses python:3.12-slim (not local: fails)" 0 "$RC"
	check_contains "podman: ... and the error names python:3.12-slim" "$ERR" "python:3.12-slim"
	printf '[languages]\nsh = "%s"\n' "$PODMAN_IMAGE" >"$AC_TMP/cfg/agentcell.toml"
	acx run --config "$AC_TMP/cfg/agentcell.toml" --backend podman --language sh --code 'echo $((6*7))'
	check_out "podman: [languages] sh = the local image runs shell code in it" 42
	printf '[sandbox]\nimage = "no-such-image:1"\n[languages]\nsh = "%s"\n' "$PODMAN_IMAGE" >"$AC_TMP/cfg/agentcell.toml"
	acx run --config "$AC_TMP/cfg/agentcell.toml" --backend podman --language sh --code 'echo lang'
	check_out "podman: the language's image wins over [sandbox] image" lang
	acx run --backend podman --image "$PODMAN_IMAGE" --language python --code 'print(1)'
	check_rc "podman: --image without python3: exit 127" 127
	check_contains "podman: ... names python3 and the image" "$ERR" \
		"python3 is not installed in the sandbox's image ($PODMAN_IMAGE)"
	acx run --backend podman --image "$PODMAN_IMAGE" --language sh --code 'echo "$0 $((6*7))"'
	check_out "podman: --image wins; sh -c gets the code as one argument" "sh 42"
else
	skip "code runs on podman" "$PODMAN_REASON"
fi

