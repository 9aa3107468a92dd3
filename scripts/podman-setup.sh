#!/bin/bash
# A private Podman service for the Docker/Podman backend's tests and benchmarks, on a
# Debian 12 machine without systemd as PID 1 and without registry access. Source it and
# call:
#
#   podman_setup            # installs podman + runc if missing, then starts a service
#   podman_teardown         # stops it and deletes everything it made
#
# podman_setup exports DOCKER_HOST (unix://$PODMAN_DIR/podman.sock), PODMAN_DIR,
# PODMAN_IMAGE (a local busybox image built with `podman import`), CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF and TMPDIR (so that `podman` commands of the caller use the same
# private storage), and returns non-zero with PODMAN_REASON set when something is missing.
# Each call uses its own directory: runs in a row (or at once) do not share anything but
# the installed packages.
#
# What this machine needs (see README, "Docker and Podman backend"):
# - runtime runc: crun is not installed with Debian 12's podman by default here;
# - cgroup_manager cgroupfs: systemd is not PID 1, so there is no systemd cgroup manager;
# - events_logger file: journald is not there either;
# - modest ulimits: podman asks for nofile 1048576 by default, which runc cannot set where
#   the container manager withholds CAP_SYS_RESOURCE;
# - netns none by default: no network set-up (no netavark/firewall work), as agentcell's
#   sandboxes have no network unless asked.

podman_setup() {
	PODMAN_REASON=""
	if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
		if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc >/tmp/podman-setup-apt.log 2>&1; then
			apt-get update -q >>/tmp/podman-setup-apt.log 2>&1
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc >>/tmp/podman-setup-apt.log 2>&1 ||
				{ PODMAN_REASON="apt-get install podman runc failed: $(tail -n 1 /tmp/podman-setup-apt.log)"; return 1; }
		fi
	fi
	local busybox=/bin/busybox
	if [ ! -x "$busybox" ] || ! dpkg -s busybox-static >/dev/null 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null 2>&1 ||
			{ PODMAN_REASON="busybox-static is missing"; return 1; }
	fi
	PODMAN_DIR=$(mktemp -d /tmp/agentcell-podman.XXXXXX)
	local P=$PODMAN_DIR
	mkdir -p "$P/rootfs/bin" "$P/rootfs/tmp" "$P/rootfs/etc" "$P/rootfs/root" \
		"$P/rootfs/home/user" "$P/storage" "$P/run" "$P/tmp" "$P/libpod" "$P/volumes"
	chmod 1777 "$P/rootfs/tmp"
	cp "$busybox" "$P/rootfs/bin/busybox"
	local c
	for c in $("$busybox" --list); do
		[ "$c" = busybox ] || ln -sf busybox "$P/rootfs/bin/$c"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' >"$P/rootfs/etc/passwd"
	printf 'root:x:0:\nuser:x:1000:\n' >"$P/rootfs/etc/group"
	chown 1000:1000 "$P/rootfs/home/user"
	cat >"$P/containers.conf" <<-EOF
	[containers]
	netns = "none"
	default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
	[engine]
	runtime = "runc"
	cgroup_manager = "cgroupfs"
	events_logger = "file"
	events_logfile_path = "$P/events.log"
	tmp_dir = "$P/libpod"
	volume_path = "$P/volumes"
	static_dir = "$P/storage/libpod"
	# conmon of a finished exec lingers this long (default 300 s) for late exit-code readers;
	# agentcell reads the exit code at once.
	exit_command_delay = 5
	EOF
	cat >"$P/storage.conf" <<-EOF
	[storage]
	driver = "overlay"
	graphroot = "$P/storage"
	runroot = "$P/run"
	EOF
	export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf TMPDIR=$P/tmp
	export PODMAN_IMAGE=localhost/agentcell-test:latest
	local out
	if ! out=$( (cd "$P/rootfs" && tar -c .) | podman import --change 'ENV PATH=/bin' - "$PODMAN_IMAGE" 2>&1); then
		PODMAN_REASON="podman import failed: $(tail -n 1 <<<"$out")"
		return 1
	fi
	# From its own directory: conmon drops an "oom" marker file in its working directory.
	(cd "$P" && exec setsid podman system service --time=0 "unix://$P/podman.sock" >"$P/service.log" 2>&1 </dev/null) &
	echo $! >"$P/service.pid"
	export DOCKER_HOST=unix://$P/podman.sock
	for _ in $(seq 100); do
		[ -S "$P/podman.sock" ] && curl -sf --unix-socket "$P/podman.sock" http://d/_ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	# shellcheck disable=SC2034 # read by the test that sources this file
	PODMAN_REASON="podman system service did not answer: $(tail -n 1 "$P/service.log")"
	return 1
}

podman_stop_service() {
	local pid
	pid=$(cat "$PODMAN_DIR/service.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	rm -f "$PODMAN_DIR/service.pid"
}

podman_teardown() {
	[ -n "${PODMAN_DIR:-}" ] && [ -d "$PODMAN_DIR" ] || return 0
	podman rm -af -t 0 >/dev/null 2>&1
	podman_stop_service
	local m
	# shellcheck disable=SC2013 # mountinfo escapes blanks in paths (\040): one word per mount
	for m in $(awk -v w="$PODMAN_DIR" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	rm -rf --one-file-system "$PODMAN_DIR"
	PODMAN_DIR=""
}
