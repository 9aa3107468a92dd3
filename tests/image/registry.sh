# shellcheck shell=bash
# Local OCI registries for the image tests and benchmarks: Debian's docker-registry
# (package docker-registry) on 127.0.0.1, random ports, everything in one temp directory.
# Source this file, then:
#
#   reg_init                      # REG_ROOT (mktemp -d), REG_PY; the test CA on first TLS use
#   reg_start NAME plain          # plain HTTP, no auth
#   reg_start NAME basic USER PW  # TLS (test CA) + htpasswd (bcrypt) basic auth
#   reg_start NAME token USER PW  # TLS + token auth through token_server.py (also TLS)
#   reg_proxy NAME PNAME [RATE]   # log_proxy.py (plain HTTP) in front of registry NAME;
#                                 # RATE: bytes/s per response (0: none)
#   reg_push NAME image REPO:TAG --layer DIR ...   # push.py with NAME's address, TLS, creds
#   reg_blob_path NAME sha256:HEX # the blob's data file in NAME's storage
#   reg_stop NAME; reg_cleanup    # stop one / stop all and remove REG_ROOT
#
# After reg_start/reg_proxy: REG_ADDR (127.0.0.1:PORT), REG_URL (http(s)://REG_ADDR),
# REG_DIR (its directory), REG_LOG (the registry's log, or the proxy's request log: one
# line per request with its Range header). Later: reg_get NAME addr|url|dir|log. TLS kinds
# use REG_CA (the test CA, PEM); the token kind also sets REG_TOKEN_LOG (one line per token
# request) and REG_TOKEN_URL. Every failure sets REG_REASON and returns 1.
#
# Needs docker-registry, openssl, curl, python3, and htpasswd (apache2-utils) for basic.

# shellcheck disable=SC2034 # REG_* are the results, read by the scripts that source this file
REG_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REG_PY=${REG_PY:-/usr/bin/python3}
REG_ROOT=${REG_ROOT:-}
REG_PIDS=()
REG_REASON=

reg_init() {
	local t
	for t in docker-registry openssl curl "$REG_PY"; do
		command -v "$t" >/dev/null || { REG_REASON="$t is not installed"; return 1; }
	done
	if [ -z "$REG_ROOT" ]; then
		REG_ROOT=$(mktemp -d /tmp/agentcell-reg.XXXXXX) || { REG_REASON="mktemp failed"; return 1; }
		chmod 755 "$REG_ROOT"
	fi
	return 0
}

reg_get() { cat "$REG_ROOT/$1/$2" 2>/dev/null; }

_reg_free_port() {
	"$REG_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The test CA and a server certificate for 127.0.0.1/localhost, once per REG_ROOT.
_reg_ca() {
	REG_CA=$REG_ROOT/ca.pem
	[ -s "$REG_ROOT/server.pem" ] && return 0
	(
		cd "$REG_ROOT" || exit 1
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
			-subj /CN=agentcell-test-registry-ca \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign &&
			openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
				-subj /CN=127.0.0.1 &&
			printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
				'basicConstraints=critical,CA:FALSE' 'extendedKeyUsage=serverAuth' \
				'keyUsage=critical,digitalSignature,keyEncipherment' >server.ext &&
			openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
				-out server.pem -days 2 -extfile server.ext &&
			# The token signer: a self-signed certificate, the registry's rootcertbundle.
			openssl req -x509 -newkey rsa:2048 -nodes -keyout signer.key -out signer.pem \
				-days 2 -subj /CN=agentcell-test-token-signer
	) >"$REG_ROOT/openssl.log" 2>&1 || { REG_REASON="openssl: $(tail -n 2 "$REG_ROOT/openssl.log")"; return 1; }
}

# _reg_wait_http URL PID LOG: until URL answers (any HTTP status) or PID dies (15 s).
_reg_wait_http() {
	local code
	for _ in $(seq 1 300); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$REG_ROOT/ca.pem" "$1" 2>/dev/null)
		[ -n "$code" ] && [ "$code" != 000 ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# _reg_bg LOG CMD...: starts CMD in its own session; sets REG_BG_PID.
_reg_bg() {
	local log=$1
	shift
	setsid "$@" </dev/null >>"$log" 2>&1 &
	REG_BG_PID=$!
	REG_PIDS+=("$REG_BG_PID")
	disown "$REG_BG_PID" 2>/dev/null || true
}

_reg_token_server() { # DIR USER PW: starts token_server.py over TLS; sets REG_TOKEN_URL
	local d=$1 tport
	rm -f "$d/token.port"
	_reg_bg "$d/token.err" "$REG_PY" "$REG_LIB_DIR/token_server.py" \
		--key "$REG_ROOT/signer.key" --cert "$REG_ROOT/signer.pem" \
		--issuer agentcell-test-issuer --service agentcell-test-registry \
		--user "$2:$3" --tls-cert "$REG_ROOT/server.pem" --tls-key "$REG_ROOT/server.key" \
		--port-file "$d/token.port" --log "$d/token.log"
	echo "$REG_BG_PID" >"$d/token.pid"
	for _ in $(seq 1 200); do
		[ -s "$d/token.port" ] && break
		kill -0 "$REG_BG_PID" 2>/dev/null || break
		sleep 0.05
	done
	tport=$(cat "$d/token.port" 2>/dev/null)
	[ -n "$tport" ] || { REG_REASON="token server did not start: $(tail -n 3 "$d/token.err")"; return 1; }
	REG_TOKEN_URL=https://127.0.0.1:$tport/token
	REG_TOKEN_LOG=$d/token.log
	: >>"$REG_TOKEN_LOG"
	echo "$REG_TOKEN_URL" >"$d/token_url"
}

# reg_start NAME plain|basic|token [USER PASSWORD]
reg_start() {
	local name=$1 kind=$2 user=${3:-} pw=${4:-} d port scheme=https auth tls
	[ -n "$REG_ROOT" ] || reg_init || return 1
	d=$REG_ROOT/$name
	mkdir -p "$d/data"
	case $kind in
	plain) scheme=http ;;
	basic | token)
		if [ -z "$user" ] || [ -z "$pw" ]; then
			REG_REASON="reg_start $kind needs USER PASSWORD"
			return 1
		fi
		_reg_ca || return 1
		;;
	*) REG_REASON="reg_start: unknown kind $kind"; return 1 ;;
	esac
	auth=
	if [ "$kind" = basic ]; then
		command -v htpasswd >/dev/null || { REG_REASON="htpasswd (apache2-utils) is not installed"; return 1; }
		htpasswd -Bbn "$user" "$pw" >"$d/htpasswd" 2>/dev/null || { REG_REASON="htpasswd failed"; return 1; }
		auth=$(printf 'auth:\n  htpasswd:\n    realm: agentcell-test\n    path: %s\n' "$d/htpasswd")
	elif [ "$kind" = token ]; then
		_reg_token_server "$d" "$user" "$pw" || return 1
		auth=$(printf 'auth:\n  token:\n    realm: %s\n    service: agentcell-test-registry\n    issuer: agentcell-test-issuer\n    rootcertbundle: %s\n' \
			"$REG_TOKEN_URL" "$REG_ROOT/signer.pem")
	fi
	tls=
	[ "$scheme" = https ] &&
		tls=$(printf '  tls:\n    certificate: %s\n    key: %s\n' "$REG_ROOT/server.pem" "$REG_ROOT/server.key")
	printf '%s\n' "$user" >"$d/user"
	printf '%s\n' "$pw" >"$d/password"
	echo "$kind" >"$d/kind"
	for _ in 1 2 3 4 5; do
		port=$(_reg_free_port)
		cat >"$d/config.yml" <<-EOF
		version: 0.1
		log:
		  level: info
		  formatter: text
		  accesslog:
		    disabled: false
		storage:
		  filesystem:
		    rootdirectory: $d/data
		  delete:
		    enabled: true
		  maintenance:
		    uploadpurging:
		      enabled: false
		http:
		  addr: 127.0.0.1:$port
		  secret: agentcell-test-$RANDOM$RANDOM
		$tls
		$auth
		EOF
		: >"$d/registry.log"
		_reg_bg "$d/registry.log" docker-registry serve "$d/config.yml"
		echo "$REG_BG_PID" >"$d/pid"
		if _reg_wait_http "$scheme://127.0.0.1:$port/v2/" "$REG_BG_PID"; then
			REG_ADDR=127.0.0.1:$port REG_URL=$scheme://127.0.0.1:$port REG_DIR=$d REG_LOG=$d/registry.log
			echo "$REG_ADDR" >"$d/addr"
			echo "$REG_URL" >"$d/url"
			echo "$REG_LOG" >"$d/log"
			echo "$d/data" >"$d/storage"
			echo "$d" >"$d/dir"
			return 0
		fi
		kill -9 "$REG_BG_PID" 2>/dev/null
		grep -q 'address already in use' "$d/registry.log" || break
	done
	REG_REASON="docker-registry did not start: $(tail -n 3 "$d/registry.log")"
	return 1
}

# reg_proxy NAME PNAME [RATE]: a logging (and throttling) proxy in front of registry NAME.
reg_proxy() {
	local name=$1 pname=$2 rate=${3:-0} d up pport
	d=$REG_ROOT/$pname
	mkdir -p "$d"
	up=$(reg_get "$name" url)
	[ -n "$up" ] || { REG_REASON="reg_proxy: no registry $name"; return 1; }
	rm -f "$d/port"
	: >"$d/requests.log"
	_reg_bg "$d/proxy.err" "$REG_PY" "$REG_LIB_DIR/log_proxy.py" --upstream "$up" \
		--rate "$rate" --port-file "$d/port" --log "$d/requests.log" \
		${REG_CA:+--cacert "$REG_CA"}
	echo "$REG_BG_PID" >"$d/pid"
	for _ in $(seq 1 200); do
		[ -s "$d/port" ] && break
		kill -0 "$REG_BG_PID" 2>/dev/null || break
		sleep 0.05
	done
	pport=$(cat "$d/port" 2>/dev/null)
	[ -n "$pport" ] || { REG_REASON="log_proxy did not start: $(tail -n 3 "$d/proxy.err")"; return 1; }
	REG_ADDR=127.0.0.1:$pport REG_URL=http://127.0.0.1:$pport REG_DIR=$d REG_LOG=$d/requests.log
	echo "$REG_ADDR" >"$d/addr"
	echo "$REG_URL" >"$d/url"
	echo "$REG_LOG" >"$d/log"
	echo "$d" >"$d/dir"
}

# reg_push NAME SUBCOMMAND REPO[:TAG] ARGS...: push.py against registry NAME (REPO without
# the host), with its TLS and credentials.
reg_push() {
	local name=$1 sub=$2 ref=$3 args=() user
	shift 3
	if [ "$(reg_get "$name" kind)" = plain ]; then
		args+=(--insecure)
	else
		args+=(--cacert "$REG_ROOT/ca.pem")
	fi
	user=$(reg_get "$name" user)
	[ -n "$user" ] && args+=(--username "$user" --password "$(reg_get "$name" password)")
	"$REG_PY" "$REG_LIB_DIR/push.py" "${args[@]}" "$sub" "$(reg_get "$name" addr)/$ref" "$@"
}

# reg_blob_path NAME sha256:HEX: the blob's data file in NAME's storage.
reg_blob_path() {
	local hex=${2#sha256:}
	printf '%s/docker/registry/v2/blobs/sha256/%s/%s/data\n' "$(reg_get "$1" storage)" "${hex:0:2}" "$hex"
}

_reg_kill() { # PID: TERM, up to 5 s, then KILL (its session too)
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -9 -- "-$pid" 2>/dev/null
	kill -9 "$pid" 2>/dev/null
	return 0
}

reg_stop() {
	local d=$REG_ROOT/$1
	_reg_kill "$(cat "$d/pid" 2>/dev/null)"
	_reg_kill "$(cat "$d/token.pid" 2>/dev/null)"
	rm -f "$d/pid" "$d/token.pid"
}

reg_cleanup() {
	local p
	for p in "${REG_PIDS[@]}"; do _reg_kill "$p"; done
	REG_PIDS=()
	if [ -n "$REG_ROOT" ] && [ -d "$REG_ROOT" ]; then
		rm -rf --one-file-system "$REG_ROOT"
	fi
	REG_ROOT=
}
