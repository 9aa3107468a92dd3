#!/bin/bash
# agentkernel.toml read as agentcell.toml: files of the shapes agentkernel's examples use
# (python app, node app, claude-code agent with [agent], [network], [build], [[files]]) give
# one warning line per key with no meaning here, and their mapped keys take effect (memory
# limit, image, [[files]], env, network policy, mount_cwd); agentcell.toml beside one wins;
# a type error is one line naming the key; with neither file nothing changes.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
W="agentcell: warning: agentkernel.toml: "

# A directory image: a static busybox and a marker.
IMG=$AC_TMP/img
mkdir -p "$IMG"/{bin,etc,tmp,proc,dev,app}
cp /usr/bin/busybox "$IMG/bin/"
for c in sh cat env echo ls grep; do ln -s busybox "$IMG/bin/$c"; done
echo "dir-image-$ID" >"$IMG/etc/marker"

# count_lines TEXT LINE: how many lines of TEXT are exactly LINE.
count_lines() { grep -cxF -- "$2" <<<"$1" || true; }

# ---------------------------------------------------------------- python app
P=$AC_TMP/python-app
mkdir -p "$P"
echo "payload-$ID" >"$P/data.txt"
cat >"$P/agentkernel.toml" <<TOML
# Python App Example (agentkernel's examples/python-app, with [[files]])
[sandbox]
name = "python-app"
base_image = "$IMG"

[agent]
preferred = "claude"

[environment]
python_version = "3.12"
package_manager = "uv"

[dependencies]
system = ["git", "curl"]

[scripts]
test = "pytest"

[mounts]
"." = "/app"

[resources]
vcpus = 1
memory_mb = 300

[security]
profile = "moderate"
pass_env = true

[network]
ports = [5000]

[[files]]
source = "data.txt"
dest = "/app/data.txt"
mode = "0644"
TOML
cd "$P" || exit 1
PY=py-$ID
acx create "$PY"
check_rc "python app: created from ./agentkernel.toml" 0
for line in "[agent] preferred has no meaning here (ignored; give create --agent)" \
	"[environment] has no meaning here (ignored)" \
	"[dependencies] has no meaning here (ignored)" \
	"[scripts] has no meaning here (ignored)" \
	"[mounts] has no meaning here (ignored)" \
	"[network] ports has no meaning here (ignored; publish ports with --publish)" \
	"[[files]] mode has no meaning here (ignored; the copy keeps the host file's mode)"; do
	check_eq "python app: warned once: $line" 1 "$(count_lines "$ERR" "$W$line")"
done
check_eq "python app: nothing else on stderr (7 warning lines)" 7 "$(grep -c '' <<<"$ERR")"
check_eq "python app: [sandbox] base_image is the image" "$IMG" "$(ac_json_field "$PY" image)"
check_eq "python app: [resources] memory_mb in the state" 300 "$(ac_json_field "$PY" memory_mb)"
check_ac "python app: start" start "$PY"
check_eq "python app: the memory limit is set (cgroup)" $((300 * 1024 * 1024)) \
	"$(cg_file "$PY" memory memory.limit_in_bytes)"
acx exec "$PY" -- cat /etc/marker
check_out "python app: it runs in the directory image" "dir-image-$ID"
acx exec "$PY" -- cat /app/data.txt
check_out "python app: [[files]] source (relative to the file) is at dest" "payload-$ID"
# pass_env = true: the caller's PATH HOME USER LANG LC_ALL TERM go in (from the creating call).
TERM_WANT=compat-term-$ID
TERM=$TERM_WANT acx create "pe-$ID"
check_contains "python app: [security] pass_env = true: TERM in the state" \
	"$(ac info "pe-$ID" --json | jq -c .env)" "\"TERM=$TERM_WANT\""
ac start "pe-$ID" >/dev/null 2>&1
acx exec "pe-$ID" -- env
check_contains "python app: pass_env: the variable is set inside" "$OUT" "TERM=$TERM_WANT"
acx run -- cat /app/data.txt
check_out "python app: run uses the same file" "payload-$ID"
check_eq "python app: run warns too, once per key" 1 \
	"$(count_lines "$ERR" "${W}[agent] preferred has no meaning here (ignored; give create --agent)")"

# agentcell.toml beside it wins where both set a key; the rest still comes from agentkernel.toml.
cat >"$P/agentcell.toml" <<'TOML'
[resources]
memory_mb = 200
TOML
acx create "both-$ID"
check_rc "both files: created" 0
check_eq "both files: agentcell.toml's memory_mb wins" 200 "$(ac_json_field "both-$ID" memory_mb)"
check_eq "both files: agentkernel.toml's image still applies" "$IMG" "$(ac_json_field "both-$ID" image)"
check_eq "both files: agentkernel.toml's warnings still shown" 1 \
	"$(count_lines "$ERR" "${W}[mounts] has no meaning here (ignored)")"
check_eq "the command line wins over both" 100 \
	"$(ac create "cli-$ID" --memory 100 >/dev/null 2>&1 && ac_json_field "cli-$ID" memory_mb)"
rm -f "$P/agentcell.toml"

# agentcell.toml's own pass_env (an array of names); -e wins over it.
PE=$AC_TMP/pass-env
mkdir -p "$PE"
printf '[security]\npass_env = ["AC_PE_%s"]\n' "$ID" >"$PE/agentcell.toml"
cd "$PE" || exit 1
env "AC_PE_$ID=from-host" "$AGENTCELL" run -- sh -c "echo \$AC_PE_$ID" >"$AC_TMP/pe.out" 2>&1
check_eq "agentcell.toml pass_env = [NAME]: the caller's value inside" from-host "$(cat "$AC_TMP/pe.out")"
env "AC_PE_$ID=from-host" "$AGENTCELL" run -e "AC_PE_$ID=from-cli" -- sh -c "echo \$AC_PE_$ID" >"$AC_TMP/pe.out" 2>&1
check_eq "agentcell.toml pass_env: -e wins" from-cli "$(cat "$AC_TMP/pe.out")"

# ---------------------------------------------------------------- node app
N=$AC_TMP/node-app
mkdir -p "$N"
cat >"$N/agentkernel.toml" <<TOML
# Node.js App Example
[sandbox]
name = "node-app"
base_image = "$IMG"

[agent]
preferred = "claude"

[resources]
vcpus = 1
memory_mb = 512

[security]
profile = "restrictive"
TOML
cd "$N" || exit 1
acx create "node-$ID"
check_rc "node app: created" 0
check_eq "node app: one warning line ([agent] preferred)" \
	"${W}[agent] preferred has no meaning here (ignored; give create --agent)" "$ERR"
check_eq "node app: memory_mb 512 (over the profile's 256)" 512 "$(ac_json_field "node-$ID" memory_mb)"
check_eq "node app: the restrictive profile applies (read-only root)" true \
	"$(ac info "node-$ID" --json | jq -r '.read_only // .security.read_only // empty')"

# ---------------------------------------------------------------- claude-code agent
C=$AC_TMP/claude-code
mkdir -p "$C"
cat >"$C/agentkernel.toml" <<'TOML'
# Claude Code Agent Configuration
[sandbox]
name = "claude-code-sandbox"

[build]
dockerfile = "Dockerfile"

[agent]
preferred = "claude"
compatibility_mode = "claude"

[resources]
vcpus = 2
memory_mb = 1024

[security]
profile = "moderate"
network = true      # Claude Code needs network for API calls
mount_cwd = true    # Mount project directory

[security.domains]
allow = ["api.anthropic.com", "*.pypi.org"]
block = ["169.254.169.254"]
TOML
cd "$C" || exit 1
acx create "cc-$ID"
check_rc "claude-code: created" 0
for line in "[build] has no meaning here (ignored)" \
	"[agent] preferred has no meaning here (ignored; give create --agent)" \
	"[agent] compatibility_mode has no meaning here (ignored)"; do
	check_eq "claude-code: warned once: $line" 1 "$(count_lines "$ERR" "$W$line")"
done
check_eq "claude-code: 3 warning lines" 3 "$(grep -c '' <<<"$ERR")"
check_eq "claude-code: memory_mb 1024" 1024 "$(ac_json_field "cc-$ID" memory_mb)"
check_contains "claude-code: network = true: the proxy is on" "$(ac info "cc-$ID" --json | jq -c .net)" '"proxy":true'
check_contains "claude-code: [security.domains] allow is the host allow list" \
	"$(ac info "cc-$ID" --json | jq -c .net.allow_hosts)" 'api.anthropic.com'
check_contains "claude-code: [security.domains] block is the host block list" \
	"$(ac info "cc-$ID" --json | jq -c .net.block_hosts)" '169.254.169.254'
ac start "cc-$ID" >/dev/null 2>&1
acx exec "cc-$ID" -- ls /workspace
check_contains "claude-code: mount_cwd = true: the project is at /workspace" "$OUT" "agentkernel.toml"

# With the network off, domain rules warn (as agentkernel does) instead of failing creates.
D=$AC_TMP/domains-off
mkdir -p "$D"
printf '[sandbox]\nname = "d"\n[security]\nprofile = "restrictive"\n[security.domains]\nallow = ["x.org"]\n' >"$D/agentkernel.toml"
cd "$D" || exit 1
acx create "doff-$ID"
check_rc "domains with the network off: created" 0
check_eq "domains with the network off: one warning" \
	"${W}[security.domains] allow has no effect with the network off (ignored)" "$ERR"

# ---------------------------------------------------------------- errors
E=$AC_TMP/bad
mkdir -p "$E"
printf '[sandbox]\nname = "bad"\n\n[resources]\nmemory_mb = "lots"\n' >"$E/agentkernel.toml"
cd "$E" || exit 1
acx create "bad-$ID"
check_rc "a type error: exit 2" 2
check_error_line "a type error: one line"
check_eq "a type error: names file, line, table and key" \
	"agentcell: agentkernel.toml:5: [resources] memory_mb must be an integer" "$ERR"
check_eq "a type error: nothing created" "" "$(ac_list_entry "bad-$ID")"
printf '[sandbox]\nname = "bad"\n[[files]]\nsource = 5\ndest = "/x"\n' >"$E/agentkernel.toml"
acx create "bad2-$ID"
check_eq "[[files]] source of the wrong type: one line naming it" \
	"agentcell: agentkernel.toml:4: [[files]] source must be a string" "$ERR"
printf '[sandbox]\nname = "bad"\n[security.commands]\nmemroy = 1\n' >"$E/agentcell.toml"
rm -f "$E/agentkernel.toml"
acx create "bad3-$ID"
check_contains "agentcell.toml stays strict" "$ERR" "unknown key 'memroy'"

# ---------------------------------------------------------------- search places, --config
Z=$AC_TMP/empty
mkdir -p "$Z"
cd "$Z" || exit 1
acx create "none-$ID"
check_rc "neither file: created" 0
check_eq "neither file: no warnings" "" "$ERR"
check_eq "neither file: the default image" host "$(ac_json_field "none-$ID" image)"
check_eq "neither file: the profile's memory_mb" 512 "$(ac_json_field "none-$ID" memory_mb)"
printf '[sandbox]\nname = "h"\n[resources]\nmemory_mb = 333\n[git]\nworktree = true\n' >"$AGENTCELL_HOME/agentkernel.toml"
acx create "home-$ID"
check_eq "\$AGENTCELL_HOME/agentkernel.toml: read when there is none here" 333 "$(ac_json_field "home-$ID" memory_mb)"
check_contains "\$AGENTCELL_HOME/agentkernel.toml: warnings name it" "$ERR" "agentkernel.toml: [git] has no meaning here (ignored)"
rm -f "$AGENTCELL_HOME/agentkernel.toml"
acx create "cfg-$ID" --config "$N/agentkernel.toml"
check_eq "--config .../agentkernel.toml: read as agentkernel's" 512 "$(ac_json_field "cfg-$ID" memory_mb)"
check_contains "--config .../agentkernel.toml: its warnings" "$ERR" "agentkernel.toml: [agent] preferred"
cp "$C/agentkernel.toml" "$AC_TMP/project.toml"
acx create "cfg2-$ID" --config "$AC_TMP/project.toml"
check_rc "--config FILE with agentkernel's keys under another name: created" 0
check_eq "... read as agentkernel's" 1024 "$(ac_json_field "cfg2-$ID" memory_mb)"
check_contains "... its warnings name it" "$ERR" "project.toml: [build] has no meaning here (ignored)"

# ---------------------------------------------------------------- MCP: warnings on stderr
M=$AC_TMP/mcp
mkdir -p "$M"
printf '[sandbox]\nname = "m"\n[build]\ndockerfile = "D"\n[resources]\nmemory_mb = 128\n' >"$M/agentkernel.toml"
cd "$M" || exit 1
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'
inited='{"jsonrpc":"2.0","method":"notifications/initialized"}'
call() { printf '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"sandbox_run","arguments":{"command":"echo mcp-%s"}}}\n' "$1" "$ID"; }
MOUT=$({ printf '%s\n' "$init" "$inited"; call 2; call 3; } | timeout -k 5 120 "$AGENTCELL" mcp 2>"$AC_TMP/mcp.err")
NONJSON=$(while read -r l; do jq -e .jsonrpc <<<"$l" >/dev/null 2>&1 || echo "$l"; done <<<"$MOUT")
check_eq "mcp: stdout is JSON-RPC only" "" "$NONJSON"
check_contains "mcp: the tool ran with the file" "$MOUT" "mcp-$ID"
check_eq "mcp: the warning is on stderr once for two calls" 1 \
	"$(count_lines "$(cat "$AC_TMP/mcp.err")" "${W}[build] has no meaning here (ignored)")"

# ---------------------------------------------------------------- serve: once at start
if start_server srv -- --port 0; then
	check_eq "serve: the warning at start, once" 1 \
		"$(count_lines "$(cat "$AC_TMP/srv.err")" "${W}[build] has no meaning here (ignored)")"
	stop_server srv "$SRV_PID"
else
	fail "serve starts with ./agentkernel.toml" "$(tail -5 "$AC_TMP/srv.err")"
fi

# ---------------------------------------------------------------- invoked as agentkernel
mkdir -p "$AC_TMP/bin"
ln -s "$AGENTCELL" "$AC_TMP/bin/agentkernel"
cd "$N" || exit 1
AGENTCELL=$AC_TMP/bin/agentkernel acx run -- true
check_contains "as agentkernel: warnings carry its name" "$ERR" \
	"agentkernel: warning: agentkernel.toml: [agent] preferred has no meaning here"
cd / || exit 1
