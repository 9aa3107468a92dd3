#!/bin/bash
# The Docker/Podman backend against a real Podman service of this test's own (runc,
# cgroupfs, a busybox image made with podman import; see scripts/podman-setup.sh).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$AC_REPO/scripts/podman-setup.sh"
ac_setup
AGENTCELL=$(readlink -f "$AGENTCELL") # the test changes directory for --mount-cwd

if ! podman_setup; then
	fail "podman service set-up" "$PODMAN_REASON"
	podman_teardown
	exit 1
fi
pass "podman service on $DOCKER_HOST with image $PODMAN_IMAGE"
IMG=$PODMAN_IMAGE
SOCK=${DOCKER_HOST#unix://}
at_exit 'for n in $(ac_names); do AC_TIMEOUT=30 ac remove "$n"; done; podman_teardown'

api() { curl -s --unix-socket "$SOCK" "$@"; }
agentcell_containers() { podman ps -a --filter label=agentcell.managed=true --format '{{.Names}}' | sort; }

ID=$(uniq_id)
B=dk-$ID

# ---- lifecycle
check_ac "create --backend podman" create "$B" --backend podman --image "$IMG" --memory 64 --pids 64
check_eq "create makes a stopped container agentcell-NAME" "agentcell-$B" "$(agentcell_containers | grep -x "agentcell-$B")"
check_eq "info: backend podman" podman "$(ac_json_field "$B" backend)"
check_eq "info: stopped" stopped "$(ac_status "$B")"
LABELS=$(podman inspect "agentcell-$B" --format '{{index .Config.Labels "agentcell.sandbox"}} {{index .Config.Labels "agentcell.managed"}}')
check_eq "labels agentcell.sandbox and agentcell.managed" "$B true" "$LABELS"
HC=$(api "http://d/containers/agentcell-$B/json" | jq -c '.HostConfig | {CapDrop, SecurityOpt, NetworkMode, Memory, PidsLimit, Init}')
check_contains "hardened: no-new-privileges" "$HC" 'no-new-privileges'
check_contains "network none" "$HC" '"NetworkMode":"none"'
check_contains "memory limit 64 MB" "$HC" '"Memory":67108864'
check_contains "pids limit 64" "$HC" '"PidsLimit":64'
check_ac "start" start "$B"
check_eq "info: running" running "$(ac_status "$B")"

# ---- exec: streams and exit codes
acx exec "$B" -- sh -c 'echo out; echo err >&2; exit 3'
check_rc "exec: the command's exit code" 3
check_out "exec: stdout alone on stdout" out
check_eq "exec: stderr alone on stderr" err "$ERR"
acx exec "$B" -- sh -c 'echo warning >&2; exit 0'
check_rc "exec: stderr output with exit 0 is success" 0
acx exec "$B" -- sh -c 'exit 7'
check_rc "exec: non-zero exit with empty stderr" 7
check_eq "exec: ... and nothing on stderr" "" "$ERR"
acx exec "$B" -- no-such-program
check_rc "exec: a missing program exits 127" 127
acx exec --env FOO=bar -w /tmp -u user "$B" -- sh -c 'echo "$FOO $(pwd) $(id -u)"'
check_out "exec: env, workdir, user" "bar /tmp 1000"
acx exec -i "$B" -- sh -c 'wc -c' < <(printf 'twelve bytes')
check_out "exec -i: stdin reaches the command" 12
head -c 300000 /dev/urandom >"$AC_TMP/blob"
ac exec -i "$B" -- cat < "$AC_TMP/blob" >"$AC_TMP/blob.back"
check "exec: binary stdin/stdout round trip" cmp "$AC_TMP/blob" "$AC_TMP/blob.back"
acx exec --timeout 1 "$B" -- sh -c 'sleep 30 & sleep 30'
check_rc "exec --timeout: exit 124" 124
check_le "exec --timeout: within ~1 s (ms)" "$ELAPSED_MS" 4000
check_eq "exec --timeout: the command tree is gone" 0 "$(ac exec "$B" -- sh -c 'ps -o args | grep -c "^sleep 30"')"

# ---- files
mkdir -p "$AC_TMP/tree/sub"
echo hello >"$AC_TMP/tree/sub/a"
ln -s a "$AC_TMP/tree/sub/link"
check_ac "cp: a binary file into a new nested directory" cp "$AC_TMP/blob" "$B:/deep/er/blob"
check_eq "cp: ... it arrived intact" "$(sha256sum <"$AC_TMP/blob" | cut -d' ' -f1)" \
	"$(ac exec "$B" -- sha256sum /deep/er/blob | cut -d' ' -f1)"
check_ac "cp: a tree in" cp "$AC_TMP/tree" "$B:/work"
check_eq "cp: tree contents and symlink" "hello hello" "$(ac exec "$B" -- sh -c 'echo $(cat /work/sub/a) $(cat /work/sub/link)')"
mkdir -p "$AC_TMP/out"
check_ac "cp: a file out" cp "$B:/deep/er/blob" "$AC_TMP/out/"
check "cp: ... binary-safe" cmp "$AC_TMP/blob" "$AC_TMP/out/blob"
check_ac "cp: a tree out" cp "$B:/work" "$AC_TMP/out/work2"
check_eq "cp: ... with its symlink" a "$(readlink "$AC_TMP/out/work2/sub/link")"
check_ac "files put (parents created)" files put "$B" /p/q/r < <(printf 'put-data')
check_eq "files cat" put-data "$(ac files cat "$B" /p/q/r)"
check_contains "files ls" "$(ac files ls "$B" /work/sub)" link
check_ac "files mkdir -p" files mkdir "$B" /m/n/o
check_ac "files rm -r" files rm -r "$B" /m
acx files cat "$B" /m/n
check_rc "files cat of a deleted path fails" 1

# ---- limits, network
acx exec "$B" -- sh -c 'x=$(head -c 300000000 /dev/zero | tr "\0" a); echo survived'
check_rc "a memory hog is killed at the limit" 137
check_ne "... and the sandbox lives on" "" "$(ac exec "$B" -- echo alive)"
acx exec "$B" -- sh -c 'for i in $(seq 100); do sleep 1 & done; wait'
check_contains "the pids limit stops a fork loop" "$ERR$OUT" "can't fork"
sleep 1.5 # the sleeps that did start end, and free the pids again
check_eq "network off: only lo" lo "$(ac exec "$B" -- sh -c "ls /sys/class/net" | tr '\n' ' ' | xargs)"

# ---- resize
check_ac "resize a running sandbox" resize "$B" --memory 128 --pids 100
check_eq "resize: memory applied" 134217728 "$(ac exec "$B" -- cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || ac exec "$B" -- cat /sys/fs/cgroup/memory.max)"
check_eq "resize: pids applied" 100 "$(ac exec "$B" -- cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || ac exec "$B" -- cat /sys/fs/cgroup/pids.max)"

# ---- stop/start: files persist, limits stay
check_ac "stop" stop "$B"
check_eq "info: stopped after stop" stopped "$(ac_status "$B")"
acx exec "$B" -- true
check_rc "exec on a stopped sandbox fails" 1
check_contains "... saying it is not running" "$ERR" "is not running"
check_ac "files put on a stopped sandbox" files put "$B" /root/while-stopped < <(printf 'x')
check_ac "start again" start "$B"
check_eq "files persist across stop/start" hello "$(ac exec "$B" -- cat /work/sub/a)"
check_eq "a file put while stopped is there" x "$(ac exec "$B" -- cat /root/while-stopped)"
check_eq "the resized memory limit survives a restart" 134217728 "$(ac exec "$B" -- cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || ac exec "$B" -- cat /sys/fs/cgroup/memory.max)"

# ---- detached commands
acx exec --detach "$B" -- sh -c 'echo d-out; echo d-err >&2; sleep 1; exit 4'
X1=$OUT
check_match "exec --detach prints an id" '^[0-9a-f]{12}$' "$X1"
check_eq "exec-status: running" running "$(ac exec-status "$X1" --json | jq -r .state)"
check_contains "exec-list shows it" "$(ac exec-list "$B")" "$X1"
wait_until 10 sh -c "[ \"\$('$AGENTCELL' exec-status $X1 --json | jq -r .state)\" = failed ]"
check_eq "exec-status: the real exit code" 4 "$(ac exec-status "$X1" --json | jq -r .exit_code)"
check_eq "exec-logs: stdout" d-out "$(ac exec-logs "$X1")"
check_eq "exec-logs --stderr" d-err "$(ac exec-logs "$X1" --stderr)"
X2=$(ac exec --detach "$B" -- sleep 100)
sleep 0.3
check_ac "exec-kill" exec-kill "$X2"
check_eq "exec-kill: recorded killed" true "$(ac exec-status "$X2" --json | jq -r .killed)"
check_eq "exec-kill: the process is gone" 0 "$(ac exec "$B" -- sh -c 'ps -o args | grep -c "^sleep 100"')"

# ---- reconcile with a policy
check_ac "policy --auto-stop-after 1s" policy "$B" --auto-stop-after 1s
sleep 2
check_ac "reconcile stops the idle sandbox" reconcile
check_eq "reconcile: the container is stopped" false "$(podman inspect "agentcell-$B" --format '{{.State.Running}}')"
check_ac "start after reconcile" start "$B"
check_ac "policy --clear" policy "$B" --clear

# ---- read-only, mount-cwd, network on
R=dr-$ID
mkdir -p "$AC_TMP/cwd"
echo from-host >"$AC_TMP/cwd/f"
cd "$AC_TMP/cwd" || exit 1
check_ac "create --read-only --mount-cwd" create "$R" --backend podman --image "$IMG" --read-only --mount-cwd
cd - >/dev/null || exit 1
check_ac "start it" start "$R"
check_eq "--mount-cwd: the directory at /workspace, commands start there" "from-host /workspace" \
	"$(ac exec "$R" -- sh -c 'echo $(cat f) $(pwd)')"
acx exec "$R" -- sh -c 'touch /x'
check_ne "read-only root refuses writes" 0 "$RC"
check_ac "... /tmp stays writable" exec "$R" -- sh -c 'touch /tmp/y'
check_ac "remove it" remove "$R"

# ---- detection after restart: a container without a state file
podman create --name "agentcell-ghost-$ID" --label agentcell.managed=true \
	--label "agentcell.sandbox=ghost-$ID" "$IMG" sleep 60 >/dev/null
acx doctor
check_contains "doctor reports the engine" "$OUT" "Podman Engine"
check_contains "doctor reports a container without a state file" "$OUT" "agentcell-ghost-$ID"
check_not_contains "doctor does not report known sandboxes" "$OUT" "agentcell-$B "
check_eq "... and never deletes it" "agentcell-ghost-$ID" "$(agentcell_containers | grep -x "agentcell-ghost-$ID")"
podman rm -f "agentcell-ghost-$ID" >/dev/null

# ---- one-shot runs
acx run --backend podman --image "$IMG" -- sh -c 'echo run-out; echo run-err >&2; exit 5'
check_rc "run --backend podman: exit code" 5
check_out "run: stdout" run-out
check_eq "run: stderr" run-err "$ERR"
acx run --backend podman --image "$IMG" --timeout 1 -- sleep 30
check_rc "run --timeout: 124" 124
acx run --backend podman --image "$IMG" -- no-such-program
check_rc "run: a missing program exits 127" 127
check_eq "runs leave no container" "agentcell-$B" "$(agentcell_containers)"

# ---- errors
acx create "img-$ID" --backend podman --image localhost/no-such-image:1
check_rc "missing image: exit 1" 1
check_error_line "missing image: one clear line"
check_contains "... naming the image" "$ERR" "no-such-image"
check_eq "... and no sandbox is left" "" "$(ac_names | grep -x "img-$ID")"
podman create --name "agentcell-taken-$ID" "$IMG" true >/dev/null
acx create "taken-$ID" --backend podman --image "$IMG"
check_rc "name conflict: exit 1" 1
check_contains "... says the container exists" "$ERR" "already exists"
check_eq "... and no sandbox is left" "" "$(ac_names | grep -x "taken-$ID")"
podman rm -f "agentcell-taken-$ID" >/dev/null
acx create "nat-$ID" --backend podman --image "$IMG" --allow-host example.com
check_rc "a host policy without --network is refused (usage)" 2
check_contains "... with the reason" "$ERR" "need the network on"
podman_stop_service
acx exec "$B" -- true
check_rc "daemon gone: exit 1" 1
check_error_line "daemon gone: one clear line"
check_contains "... says the engine cannot be reached" "$ERR" "cannot reach the container engine"
acx create "gone-$ID" --backend podman --image "$IMG"
check_rc "daemon gone: create fails" 1
check_eq "... and leaves no sandbox" "" "$(ac_names | grep -x "gone-$ID")"
# From its own directory: conmon drops an "oom" marker file in its working directory.
(cd "$PODMAN_DIR" && exec setsid podman system service --time=0 "$DOCKER_HOST" >>"$PODMAN_DIR/service.log" 2>&1 </dev/null) &
echo $! >"$PODMAN_DIR/service.pid"
wait_until 10 curl -sf --unix-socket "$SOCK" http://d/_ping
check_eq "after the engine restarts, the sandbox is found again" running "$(ac_status "$B")"

# ---- remove: nothing left
check_ac "remove" remove "$B"
check_eq "no agentcell container is left" "" "$(agentcell_containers)"
check_eq "no state is left" "" "$(ac_names)"
