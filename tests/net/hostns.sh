#!/bin/sh
# hostns.sh NS CMD...: runs CMD in network namespace NS with /etc/netns/NS/hosts on
# /etc/hosts (in a private mount namespace of its own), like `ip netns exec`, but keeping
# /sys as it is (ip netns exec mounts a new sysfs, which hides /sys/fs/cgroup). One
# process: each step execs the next.
ns=$1
shift
exec unshare --mount --propagation private -- sh -c \
	'mount --bind "/etc/netns/$0/hosts" /etc/hosts && exec nsenter --net="/run/netns/$0" -- "$@"' \
	"$ns" "$@"
