# shellcheck shell=bash
# Sourced by the tests of agentkernel's sudo (test_compat_{cli,api,mcp}.sh), after lib.sh.
#
# user_image REF: makes (tests/image/mkarchive.py, from the host's static busybox) and
# imports (`agentcell image import`) an image tagged REF whose config sets User "nobody"
# (uid 65534 in its /etc/passwd): the native backend runs its commands as that user by
# default, so only an explicit uid 0 makes `id -u` print 0 there. Returns non-zero when the
# image could not be made or imported; $AC_TMP/user-image.out then says why.
USER_IMAGE_UID=65534

user_image() {
	local root=$AC_TMP/user-image-root spec a bb
	bb=$(command -v busybox) || {
		echo "busybox is not installed" >"$AC_TMP/user-image.out"
		return 1
	}
	mkdir -p "$root"/{bin,etc,tmp,root}
	cp "$bb" "$root/bin/busybox" || return 1
	for a in sh id cat echo sleep true; do ln -sf busybox "$root/bin/$a"; done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:%s:%s:nobody:/:/bin/sh\n' \
		"$USER_IMAGE_UID" "$USER_IMAGE_UID" >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:%s:\n' "$USER_IMAGE_UID" >"$root/etc/group"
	chmod 1777 "$root/tmp"
	spec=$(jq -cn --arg l "$root" --arg t "$1" \
		'{tags: [$t], layers: [$l], compress: "none", config: {Env: ["PATH=/bin"], User: "nobody"}}')
	"$PY" "$AC_REPO/tests/image/mkarchive.py" image --format docker "$AC_TMP/user-image.tar" \
		--image "$spec" >"$AC_TMP/user-image.out" 2>&1 &&
		ac image import "$AC_TMP/user-image.tar" >>"$AC_TMP/user-image.out" 2>&1
}
