#!/bin/bash
# Named volumes: `agentcell volume create/ls/inspect/rm` and --volume NAME:/path[:ro] on the
# native backend, on the real kernel. Two sandboxes share a volume's files; its files
# outlive both; :ro refuses writes (EROFS) while rw works; what the sandbox's root writes
# belongs to root on the host; a symlink in the volume resolves inside the sandbox, and a
# symlink planted in an image at the mount point never sends the mount (or its mkdir) to
# the host; rm is refused while a sandbox mounts the volume (naming it) and works after;
# bad specs exit 2, a missing volume exits 1 with the 'volume create' hint; the API's
# "volumes" (agentkernel's "NAME:/path[:ro]" strings); other backends say they lack it.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
V=vol$ID
VDIR=$AGENTCELL_HOME/volumes/$V/data

# ------------------------------------------------------------------ volume commands
acx volume create -- "-bad$ID"
check_rc "volume create -- -bad (a name starting with -): exit 2" 2
check_contains "... says what a name may be" "$ERR" "invalid volume name"
acx volume create "bad name"
check_rc "volume create 'bad name': exit 2" 2
check_error_line "volume create 'bad name': one error line"
check_ac "volume create $V --label team=qa" volume create "$V" --label team=qa
check_out "volume create prints the name" "$V"
acx volume create "$V"
check_rc "volume create of a taken name: exit 1" 1
check_contains "volume create of a taken name: says so" "$ERR" "'$V' already exists"
check_eq "the volume's data directory: 0755 root:root" "755 0:0" "$(stat -c '%a %u:%g' "$VDIR" 2>&1)"
check_eq "volumes/ is 0700 (only root reaches what sandboxes wrote)" 700 \
	"$(stat -c %a "$AGENTCELL_HOME/volumes" 2>&1)"
check_eq "the record" "$V qa" "$(jq -r '.name + " " + .labels.team' "$AGENTCELL_HOME/volumes/$V.json" 2>&1)"
check_ac "volume ls" volume ls
check_match "volume ls: a header and the volume" "NAME +CREATED +SIZE +USED BY.*$V" "$(tr '\n' ' ' <<<"$OUT")"
check_ac "volume ls --json" volume ls --json
check_eq "volume ls --json: the volume, unused" "$V [] $VDIR" \
	"$(jq -r --arg v "$V" '.[] | select(.name == $v) | "\(.name) \(.used_by | tojson) \(.path)"' <<<"$OUT")"
check_ac "volume inspect" volume inspect "$V"
check_eq "volume inspect: JSON with path, size, used_by" "$VDIR 0 0" \
	"$(jq -r '"\(.path) \(.size) \(.used_by | length)"' <<<"$OUT")"
acx volume inspect "nope$ID"
check_rc "volume inspect of a missing volume: exit 1" 1
acx volume frob
check_rc "volume frob: exit 2" 2
check_eq "volume create is audited" "volume_create team=qa" \
	"$(jq -r --arg v "$V" 'select(.details.volume == $v) | "\(.event) team=\(.details.labels.team)"' "$AGENTCELL_HOME/audit.jsonl" 2>&1)"

# ------------------------------------------------------------------ refusals at create
for bad in "$V" "$V:data" "$V:/" "$V:/proc/x" "$V:/sys" "$V:/dev/shm" "$V:/a/../b" \
	"bad name:/x" ":/x" "$V:/x:rx" "$V:/x:y:ro"; do
	acx create "bad-$ID" --volume "$bad"
	check_rc "create --volume '$bad': exit 2" 2
	check_error_line "create --volume '$bad': one error line"
done
acx create "bad-$ID" --volume "$V:/a" --volume "$V:/a/"
check_rc "create: one mount point twice: exit 2" 2
acx create "bad-$ID" --volume "missing$ID:/data"
check_rc "create --volume of a missing volume: exit 1" 1
check_contains "a missing volume: the 'volume create' hint" "$ERR" \
	"volume 'missing$ID' not found: create it with 'agentcell volume create missing$ID'"
acx run --volume "missing$ID:/data" -- true
check_rc "run --volume of a missing volume: exit 1" 1
check_eq "no sandbox was made by a refused --volume" "" "$(ac_names)"
acx create "pod-$ID" --backend podman --volume "$V:/data"
check_rc "--backend podman --volume: exit 1" 1
check_contains "--backend podman --volume: a clear refusal" "$ERR" \
	"volumes are not supported by the podman backend"

# ------------------------------------------------------------------ the API
if ! command -v curl >/dev/null; then
	skip "the API's volumes" "curl is not installed"
elif start_server vapi -- --port 0; then
	U=http://127.0.0.1:$SRV_PORT
	post() { curl -s -w '\n%{http_code}' --max-time 60 -X POST -H 'Content-Type: application/json' -d "$2" "$U$1"; }
	R=$(post /sandboxes "{\"name\":\"api-$ID\",\"volumes\":[\"$V:/a/../b\"]}")
	check_eq "API: a bad volume entry is a 400" 400 "$(tail -1 <<<"$R")"
	R=$(post /sandboxes "{\"name\":\"api-$ID\",\"volumes\":[\"nope$ID:/data\"]}")
	check_eq "API: a missing volume" "404 'agentcell volume create nope$ID'" \
		"$(tail -1 <<<"$R") $(head -1 <<<"$R" | jq -r .error | grep -o "'agentcell volume create [^']*'")"
	R=$(post /sandboxes "{\"name\":\"api-$ID\",\"volumes\":\"$V:/data\"}")
	check_eq "API: volumes must be an array" 400 "$(tail -1 <<<"$R")"
	R=$(post /sandboxes "{\"name\":\"api-$ID\",\"volumes\":[\"$V:/data\"]}")
	API_CODE=$(tail -1 <<<"$R")
	if [ "$API_CODE" = 501 ]; then
		check_contains "API: volumes on a backend without them: 501 and why" "$(head -1 <<<"$R")" \
			"volumes are not supported by the native backend"
	else
		check_eq "API: POST /sandboxes with volumes: 201" 201 "$API_CODE"
		R=$(post "/sandboxes/api-$ID/exec" '{"command":["sh","-c","echo api > /data/api.txt"]}')
		check_eq "API: the sandbox writes into the volume" 200 "$(tail -1 <<<"$R")"
		check_eq "API: the file is in the volume on the host" api "$(cat "$VDIR/api.txt" 2>&1)"
		check_eq "API: its state records the volume" "$V /data false" \
			"$(jq -r '.volumes[0] | "\(.name) \(.path) \(.read_only)"' "$AGENTCELL_HOME/sandboxes/api-$ID.json" 2>&1)"
		curl -s --max-time 60 -X DELETE "$U/sandboxes/api-$ID" >/dev/null
		R=$(post /run "{\"command\":[\"cat\",\"/v/api.txt\"],\"volumes\":[\"$V:/v:ro\"]}")
		check_eq "API: POST /run with a read-only volume" "200 api" \
			"$(tail -1 <<<"$R") $(head -1 <<<"$R" | jq -r '.data.output // .data.stdout // empty' | tr -d '\n')"
		rm -f "$VDIR/api.txt"
	fi
	stop_server vapi "$SRV_PID"
else
	fail "serve starts" "$(tail -20 "$AC_TMP/vapi.err")"
fi

# ------------------------------------------------------------------ MCP
mcp_call() { # the tools/call result of sandbox_run with ARGUMENTS (JSON)
	printf '%s\n' \
		'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}' \
		'{"jsonrpc":"2.0","method":"notifications/initialized"}' \
		"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"sandbox_run\",\"arguments\":$1}}" |
		timeout -k 5 60 "$AGENTCELL" mcp 2>/dev/null | jq -c 'select(.id == 2) | .result' 2>/dev/null
}
R=$(mcp_call "{\"command\":[\"true\"],\"volumes\":[\"nope$ID:/m\"]}")
check_eq "MCP: a missing volume is an error result with the hint" "true 'agentcell volume create nope$ID'" \
	"$(jq -r '.isError' <<<"$R") $(jq -r '.content[0].text' <<<"$R" | grep -o "'agentcell volume create [^']*'")"
R=$(mcp_call "{\"command\":[\"sh\",\"-c\",\"echo mcp > /m/mcp.txt\"],\"volumes\":[\"$V:/m\"]}")
if [[ "$R" == *"not supported by the native backend"* ]]; then
	skip "MCP: sandbox_run with a volume" "the native backend does not declare volumes yet"
else
	check_eq "MCP: sandbox_run writes into the volume" "0 mcp" \
		"$(jq -r '.structuredContent.exit_code // .isError' <<<"$R") $(cat "$VDIR/mcp.txt" 2>&1)"
	rm -f "$VDIR/mcp.txt"
fi

# ------------------------------------------------------------------ mounts in sandboxes
acx create "probe-$ID" --volume "$V:/data"
if [ "$RC" -ne 0 ] && [[ "$ERR" == *"not supported by the native backend"* ]]; then
	skip "native sandboxes mount volumes" "the native backend does not declare volumes yet"
	exit 0
fi
check_rc "create with --volume" 0
ac remove "probe-$ID" >/dev/null 2>&1

A=va-$ID B=vb-$ID C=vc-$ID
check_ac "create $A (rw at /data)" create "$A" --volume "$V:/data"
check_ac "create $B (rw at /srv/shared, created in its root)" create "$B" --volume "$V:/srv/shared:rw"
check_ac "create $C (read-only at /ro)" create "$C" --volume "$V:/ro:ro"
check_eq "$C's state: read_only" true "$(jq -r '.volumes[0].read_only' "$AGENTCELL_HOME/sandboxes/$C.json")"
for s in "$A" "$B" "$C"; do check_ac "start $s" start "$s"; done

acx exec "$A" -- sh -c 'echo from-a > /data/hello && id -u'
check_rc "$A writes /data/hello" 0
check_eq "$B sees it at /srv/shared/hello" from-a "$(ac exec "$B" -- cat /srv/shared/hello 2>&1)"
acx exec "$B" -- sh -c 'mkdir -p /srv/shared/d && echo from-b > /srv/shared/d/f'
check_rc "$B writes /srv/shared/d/f" 0
check_eq "$A sees it at /data/d/f" from-b "$(ac exec "$A" -- cat /data/d/f 2>&1)"
check_eq "$C reads through its read-only mount" from-a "$(ac exec "$C" -- cat /ro/hello 2>&1)"
acx exec "$C" -- sh -c 'echo x > /ro/new'
check_ne "$C: writing into a :ro volume fails" 0 "$RC"
check_contains "$C: ... with EROFS" "$ERR" "Read-only file system"
acx exec "$C" -- rm /ro/hello
check_ne "$C: removing from a :ro volume fails" 0 "$RC"
check_eq "$C: nothing was written through the :ro mount" "missing from-a" \
	"$([ -e "$VDIR/new" ] && echo present || echo missing) $(cat "$VDIR/hello" 2>&1)"

# Ownership: the sandbox's root is root on the host's side of the volume.
check_eq "a file written by the sandbox's root is root's on the host" "0:0" "$(stat -c %u:%g "$VDIR/hello" 2>&1)"
check_eq "a directory made by the sandbox's root is root's on the host" "0:0" "$(stat -c %u:%g "$VDIR/d" 2>&1)"
check_eq "inside, the volume's files are root's too" "0:0" "$(ac exec "$A" -- stat -c %u:%g /data/hello 2>&1)"

# No escape through links: a symlink to / in the volume resolves in the sandbox.
echo "host-only-$ID" >"$AC_TMP/marker"
acx exec "$A" -- sh -c "ln -s / /data/rootlink && cat /data/rootlink$AC_TMP/marker"
check_ne "a symlink to / in the volume resolves inside the sandbox, not to the host" 0 "$RC"
check_not_contains "... the host's file is not read" "$OUT" "host-only-$ID"
check_eq "the host keeps the link as a link" "/" "$(readlink "$VDIR/rootlink" 2>&1)"
check_eq "... it reaches the sandbox's own root" "inside-$ID" \
	"$(ac exec "$A" -- sh -c "echo inside-$ID > /root/mark && cat /data/rootlink/root/mark" 2>&1)"

# A symlink planted at the mount point (in an image) is not followed to the host.
IMG=$AC_TMP/img
mkdir -p "$IMG/bin" "$IMG/etc" "$AC_TMP/hosttarget"
cp "$(command -v busybox)" "$IMG/bin/busybox"
ln -s busybox "$IMG/bin/sh"
ln -s busybox "$IMG/bin/cat"
ln -s busybox "$IMG/bin/ls"
ln -s "$AC_TMP/hosttarget" "$IMG/planted"
ln -s "$AC_TMP/hosttarget" "$IMG/planted2"
P=vp-$ID
check_ac "create $P from an image with planted symlinks" create "$P" --image "$IMG" \
	--volume "$V:/planted" --volume "$V:/planted2/sub"
acx start "$P"
START_RC=$RC
check_eq "the host's link target got nothing (no mount point made through the link)" "" \
	"$(ls -A "$AC_TMP/hosttarget" 2>&1)"
check_eq "nothing of the host is mounted at the link's target" "" \
	"$(mounts_mentioning "$AC_TMP/hosttarget")"
if [ "$START_RC" -eq 0 ]; then
	check_eq "$P: the volume is mounted inside its root" from-a "$(ac exec "$P" -- cat /planted/hello 2>&1)"
else
	pass "$P: the start was refused ($(head -1 <<<"$ERR"))"
fi
ac remove "$P" >/dev/null 2>&1

# ------------------------------------------------------------------ rm while in use
acx volume rm "$V"
check_rc "volume rm while sandboxes mount it: exit 1" 1
check_contains "volume rm names a sandbox that mounts it" "$ERR" "'$A'"
check_contains "volume inspect: used_by" "$(ac volume inspect "$V" | jq -c .used_by)" "\"$A\""
check_ac "stop $A" stop "$A"
check_ac "start $A again: the volume is mounted again" start "$A"
check_eq "$A sees the volume after a restart" from-a "$(ac exec "$A" -- cat /data/hello 2>&1)"

# The files outlive every sandbox that mounted them.
for s in "$A" "$B" "$C"; do check_ac "remove $s" remove "$s"; done
check_eq "the files outlive the sandboxes" "from-a from-b" "$(cat "$VDIR/hello" "$VDIR/d/f" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "no host mount of the volume is left" "" "$(mounts_mentioning "$VDIR")"
acx run --volume "$V:/data" -- cat /data/d/f
check_eq "a new sandbox (run) sees them" "0 from-b" "$RC $OUT"
E=ve-$ID
check_ac "create $E" create "$E" --volume "$V:/data"
check_ac "start $E" start "$E"
check_eq "$E sees the old files" from-a "$(ac exec "$E" -- cat /data/hello 2>&1)"
acx volume rm "$V"
check_contains "volume rm names $E" "$ERR" "'$E'"
check_ac "remove $E" remove "$E"
check_ac "volume rm after the last sandbox is gone" volume rm "$V"
check_eq "the volume's files are gone" missing "$([ -e "$AGENTCELL_HOME/volumes/$V" ] && echo present || echo missing)"
acx volume rm "$V"
check_rc "volume rm of a missing volume: exit 1" 1
check_eq "volume rm is audited" "volume_create volume_remove" \
	"$(jq -r --arg v "$V" 'select(.details.volume == $v) | .event' "$AGENTCELL_HOME/audit.jsonl" | sort -u | tr '\n' ' ' | sed 's/ $//')"
