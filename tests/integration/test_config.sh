#!/bin/bash
# agentcell.toml (lookup, defaults, strict errors) and the command policy enforced inside
# the sandbox: blocked programs cannot be started by any path; allowlist_only allows
# nothing else.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
D=$AC_TMP/proj
mkdir -p "$D"
cat >"$D/agentcell.toml" <<TOML
# agentkernel-style configuration
[sandbox]
name = "ignored"
[resources]
vcpus = 0.5
memory_mb = 300
[security]
profile = "moderate"
network = false
[security.commands]
block = ["curl", "perl"]
[[files]]
host = "$D/agentcell.toml"
sandbox = "/etc/project.toml"
TOML
C=cf-$ID
(cd "$D" && "$AGENTCELL" create "$C") >/dev/null
check_eq "./agentcell.toml: memory_mb" 300 "$(ac_json_field "$C" memory_mb)"
check_eq "./agentcell.toml: vcpus" 0.5 "$(ac info "$C" --json | jq -r .cpus)"
check_eq "./agentcell.toml: the block list is in the state" '["curl","perl"]' "$(ac info "$C" --json | jq -c .command_policy.block)"
check_ac "start $C" start "$C"
check_eq "[[files]] were copied in" "[resources]" "$(ac exec "$C" -- grep -F '[resources]' /etc/project.toml)"
check_eq "command-line options win over the file" 200 \
	"$(cd "$D" && "$AGENTCELL" create "o-$ID" --memory 200 >/dev/null && ac_json_field "o-$ID" memory_mb)"

# The block list, tried every way.
acx exec "$C" -- curl --version
check_rc "a blocked program: exit 126" 126
check_contains "... with a clear error" "$ERR" "blocked by the command policy"
check_contains "... and an audit event" "$(ac audit --sandbox "$C" --json)" "policy_violation"
acx exec "$C" -- sh -c 'curl --version'
check_ne "blocked through sh -c" 0 "$RC"
acx exec "$C" -- /usr/bin/env curl --version
check_ne "blocked through /usr/bin/env" 0 "$RC"
acx exec "$C" -- /usr/bin/curl --version
check_ne "blocked by full path" 0 "$RC"
acx exec "$C" -- /bin/curl --version
check_ne "blocked through the /bin symlink" 0 "$RC"
acx exec "$C" -- sh -c 'ln -s /usr/bin/curl /tmp/l && /tmp/l --version'
check_ne "blocked through a new symlink" 0 "$RC"
acx exec "$C" -- sh -c 'cp /usr/bin/curl /tmp/c && /tmp/c --version'
check_ne "a copy of a blocked program does not run" 0 "$RC"
acx exec "$C" -- sh -c 'chmod 755 /usr/bin/curl'
check_ne "the mask cannot be made executable" 0 "$RC"
# Names on the host that are hard links of /usr/bin/perl (same inode).
PINO=$(stat -c %i /usr/bin/perl 2>/dev/null)
LINKS=$(find /usr/bin -maxdepth 1 -type f -inum "${PINO:-0}" ! -name perl 2>/dev/null | head -3 | tr '\n' ' ')
if [ -n "$LINKS" ]; then
	acx exec "$C" -- sh -c "for f in $LINKS; do \$f -e 'print 1' && echo RAN; done"
	check_not_contains "hard links of a blocked program are blocked too ($LINKS)" "$OUT" "RAN"
else
	skip "hard links of a blocked program are blocked too" "no hard-linked perl here"
fi
check_eq "other programs still run" ok "$(ac exec "$C" -- sh -c 'echo ok')"
acx run --config "$D/agentcell.toml" -- curl --version
check_rc "run honours --config's block list" 126
check "nothing changed on the host" test -x /usr/bin/curl

# allowlist_only (Landlock).
cat >"$AC_TMP/allow.toml" <<'TOML'
[security.commands]
allow = ["sh", "cat", "echo", "ls"]
allowlist_only = true
TOML
check_eq "allowlist: allowed programs run" ok "$(ac run --config "$AC_TMP/allow.toml" -- sh -c 'ls / >/dev/null && echo ok')"
acx run --config "$AC_TMP/allow.toml" -- sh -c 'python3 -c 1'
check_ne "allowlist: anything else is refused, even through sh" 0 "$RC"
acx run --config "$AC_TMP/allow.toml" -- sh -c 'cp /bin/cat /tmp/mycat; /tmp/mycat /etc/hostname'
check_ne "allowlist: a copy of an allowed program does not run" 0 "$RC"
acx run --config "$AC_TMP/allow.toml" -- python3 -c 1
check_rc "allowlist: a refused program: exit 126" 126

# Strict parsing: a one-line error with file, line and column; nothing created.
bad() { # NAME CONTENT EXPECTED
	printf '%b' "$2" >"$AC_TMP/$1.toml"
	acx create "bad-$1-$ID" --config "$AC_TMP/$1.toml"
	check_rc "config $1: exit 2" 2
	check_contains "config $1: says what is wrong" "$ERR" "$3"
	check_eq "config $1: nothing created" "" "$(ac_list_entry "bad-$1-$ID")"
}
bad syntax '[resources]\nmemory_mb = "512\n' "syntax.toml:2:13"
bad unknownkey '[resources]\nmemroy_mb = 512\n' "unknown key 'memroy_mb'"
bad unknowntable '[sandboxx]\n' "unknown table [sandboxx]"
bad type '[resources]\nmemory_mb = "a lot"\n' "memory_mb"
bad range '[resources]\nmemory_mb = 1\n' "memory_mb"
# network = true: native sandboxes reach out through the egress proxy; [network] is its policy.
printf '[security]\nnetwork = true\n[network]\nblock_hosts = ["*.blocked.example"]\nallowlist_only = false\n' >"$AC_TMP/network.toml"
acx create "net-$ID" --config "$AC_TMP/network.toml"
check_rc "config network = true on the native backend: created" 0
check_contains "config network = true: the state has the proxy" "$(ac info "net-$ID" --json | jq -c .net)" '"proxy":true'
check_contains "config [network] block_hosts: in the state" "$(ac info "net-$ID" --json | jq -c .net.block_hosts)" '*.blocked.example'
ac remove "net-$ID" >/dev/null
bad netpattern '[network]\nallow_hosts = ["bad host"]\n' "network.allow_hosts[0]"
bad nettype '[network]\nallowlist_only = "yes"\n' "network.allowlist_only"
bad netkey '[network]\nallow = ["x.com"]\n' "unknown key 'allow'"
bad dup '[resources]\nvcpus = 1\nvcpus = 2\n' "vcpus"
bad emptyallow '[security.commands]\nallowlist_only = true\n' "allow"
bad files '[[files]]\nhost = "/etc/hostname"\n' "files"
acx create "nf-$ID" --config "$AC_TMP/does-not-exist.toml"
check_rc "a missing --config file: exit 1" 1
