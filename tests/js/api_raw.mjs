// agentcell serve's HTTP API with plain fetch (and node:http where a request must be sent
// byte for byte): what the agentkernel SDK does not cover. Authentication, the envelope,
// every 4xx, the routes beyond the SDK, event streams and parallelism.
//
//   node tests/js/api_raw.mjs [BASE_URL [API_KEY]]
//   (or AGENTCELL_URL / AGENTCELL_API_KEY in the environment)
//
// One line per check: "ok - <desc>" or "not ok - <desc>" followed by "#   " diagnostics.
// Exits 1 if any check failed. Sandboxes it creates are named raw-<pid>-*, removed at the
// end whatever happened.
import http from "node:http";

import { check, clip, diag, eq, finish, notOk, ok, step } from "./tap.mjs";
const BASE = process.argv[2] || process.env.AGENTCELL_URL || "http://127.0.0.1:18888";
const KEY = process.argv[3] || process.env.AGENTCELL_API_KEY || "";
const P = `raw-${process.pid}`;
const U = new URL(BASE);

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ requests

function authHeaders(extra = {}) {
	const h = { ...extra };
	if (KEY) h.Authorization = `Bearer ${KEY}`;
	return h;
}

// api(method, path, body?, {headers, raw, auth}) -> {status, headers, text, json, ms}
async function api(method, path, body, opts = {}) {
	const headers = opts.auth === false ? { ...(opts.headers ?? {}) } : authHeaders(opts.headers);
	let payload;
	if (body !== undefined) {
		payload = typeof body === "string" ? body : JSON.stringify(body);
		headers["Content-Type"] ??= "application/json";
	}
	const t0 = now();
	const r = await fetch(BASE + path, { method, headers, body: payload, signal: AbortSignal.timeout(opts.timeout ?? 60000) });
	const text = await r.text();
	let json;
	try {
		json = JSON.parse(text);
	} catch {
		json = undefined;
	}
	return { status: r.status, headers: r.headers, text, json, ms: now() - t0 };
}

// A request through node:http: the path goes out exactly as given (no URL normalisation).
function rawRequest(method, path, { headers = {}, body, chunks } = {}) {
	return new Promise((resolve) => {
		const req = http.request(
			{ host: U.hostname, port: U.port, method, path, headers: authHeaders(headers) },
			(res) => {
				let data = "";
				res.setEncoding("utf8");
				res.on("data", (d) => (data += d));
				res.on("end", () => {
					let json;
					try {
						json = JSON.parse(data);
					} catch {
						json = undefined;
					}
					resolve({ status: res.statusCode, headers: res.headers, text: data, json });
				});
				res.on("error", (e) => resolve({ status: res.statusCode, error: e.message, text: data }));
			},
		);
		req.on("error", (e) => resolve({ status: 0, error: e.message, text: "" }));
		if (chunks) {
			// Chunked upload, written as the socket drains; a server that answers early
			// may close the connection under us: what it answered is what counts.
			let i = 0;
			const write = () => {
				while (i < chunks.count) {
					i++;
					if (!req.write(chunks.data)) {
						req.once("drain", write);
						return;
					}
				}
				req.end();
			};
			write();
		} else {
			if (body !== undefined) req.write(body);
			req.end();
		}
	});
}

// Sends only the headers of a request with Content-Length n and Expect: 100-continue, and
// what the server answers: {status, json, continued}. The body is never sent.
function expectContinue(method, path, n) {
	return new Promise((resolve) => {
		const out = { status: 0, continued: false, text: "" };
		const req = http.request({
			host: U.hostname, port: U.port, method, path,
			headers: authHeaders({ "Content-Type": "application/json", "Content-Length": String(n), Expect: "100-continue" }),
		});
		const timer = setTimeout(() => {
			out.error = "no answer within 5 s";
			req.destroy();
			resolve(out);
		}, 5000);
		req.on("continue", () => {
			out.continued = true;
			clearTimeout(timer);
			req.destroy();
			resolve(out);
		});
		req.on("response", (res) => {
			out.status = res.statusCode;
			res.setEncoding("utf8");
			res.on("data", (d) => (out.text += d));
			res.on("end", () => {
				clearTimeout(timer);
				try {
					out.json = JSON.parse(out.text);
				} catch {
					/* not JSON */
				}
				req.destroy();
				resolve(out);
			});
		});
		req.on("error", (e) => {
			clearTimeout(timer);
			out.error ??= e.message;
			resolve(out);
		});
		req.flushHeaders();
	});
}

// An SSE request: returns {status, headers, events: [{event, data, t}], ms}. onEvent(ev,
// controller) may abort.
async function sse(path, body, onEvent) {
	const ac = new AbortController();
	const t0 = now();
	const r = await fetch(BASE + path, {
		method: "POST",
		headers: authHeaders({ "Content-Type": "application/json" }),
		body: JSON.stringify(body),
		signal: ac.signal,
	});
	const out = { status: r.status, headers: r.headers, events: [], aborted: false };
	if (!r.ok || !(r.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
		out.text = await r.text();
		return out;
	}
	const reader = r.body.getReader();
	const dec = new TextDecoder();
	let buf = "";
	try {
		for (;;) {
			const { value, done } = await reader.read();
			if (done) break;
			buf += dec.decode(value, { stream: true });
			let i;
			while ((i = buf.indexOf("\n\n")) >= 0) {
				const frame = buf.slice(0, i);
				buf = buf.slice(i + 2);
				let event = "message";
				const data = [];
				for (const line of frame.split("\n")) {
					if (line.startsWith("event:")) event = line.slice(6).trim();
					else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
				}
				if (!data.length) continue;
				let d;
				try {
					d = JSON.parse(data.join("\n"));
				} catch {
					d = { raw: data.join("\n") };
				}
				const ev = { event, data: d, t: now() - t0 };
				out.events.push(ev);
				if (onEvent && onEvent(ev) === "abort") {
					out.aborted = true;
					ac.abort();
					await reader.cancel().catch(() => {});
					out.ms = now() - t0;
					return out;
				}
			}
		}
	} catch (e) {
		if (!out.aborted) out.error = e.message;
	}
	out.ms = now() - t0;
	return out;
}

function isEnvelopeOk(r) {
	return r.json && r.json.success === true && "data" in r.json;
}
function isEnvelopeErr(r) {
	return r.json && r.json.success === false && typeof r.json.error === "string" && r.json.error.length > 0;
}
function desc(r) {
	return `HTTP ${r.status} ${clip(r.text ?? r.error ?? "")}`;
}
// expectError(desc, r, status, substring?)
function expectError(d, r, status, sub) {
	return check(
		d,
		r.status === status && isEnvelopeErr(r) && (!sub || r.json.error.includes(sub)),
		`expected HTTP ${status}${sub ? ` with error containing '${sub}'` : ""} in the error envelope`,
		`got: ${desc(r)}`,
	);
}

const created = new Set();
async function create(name, extra = {}) {
	created.add(name);
	return api("POST", "/sandboxes", { name, ...extra });
}
async function names() {
	const r = await api("GET", "/sandboxes");
	return (r.json?.data ?? []).map((s) => s.name);
}

// ------------------------------------------------------------------ the checks

async function main() {
	console.log(`# api_raw: ${BASE} (${KEY ? "with" : "without"} API key)`);
	const A = `${P}-a`;
	const B = `${P}-b`;

	// ============================================================ auth
	if (KEY) {
		let r = await api("GET", "/sandboxes", undefined, { auth: false });
		expectError("auth: no Authorization header -> 401 'Missing Authorization header'", r, 401, "Missing Authorization header");
		r = await api("GET", "/sandboxes", undefined, { auth: false, headers: { Authorization: `Basic ${Buffer.from("u:p").toString("base64")}` } });
		expectError("auth: Basic scheme -> 401 naming 'Bearer'", r, 401, "Bearer");
		r = await api("GET", "/sandboxes", undefined, { auth: false, headers: { Authorization: "Bearer wrong" } });
		expectError("auth: wrong key -> 401 'Invalid API key'", r, 401, "Invalid API key");
		r = await api("GET", "/sandboxes", undefined, { auth: false, headers: { Authorization: `Bearer ${KEY.slice(0, -1)}` } });
		expectError("auth: a prefix of the key -> 401", r, 401, "Invalid API key");
		r = await api("GET", "/sandboxes", undefined, { auth: false, headers: { Authorization: `Bearer ${KEY}x` } });
		expectError("auth: the key plus a character -> 401", r, 401, "Invalid API key");
		r = await api("GET", "/sandboxes", undefined, { auth: false, headers: { Authorization: "Bearer " } });
		expectError("auth: an empty key -> 401", r, 401);
		r = await api("POST", "/run", { command: ["true"] }, { auth: false });
		expectError("auth: POST /run without a key -> 401 (nothing runs)", r, 401);
		r = await api("POST", "/sandboxes", { name: `${P}-noauth` }, { auth: false });
		expectError("auth: POST /sandboxes without a key -> 401", r, 401);
		check("auth: a refused create leaves no sandbox", !(await names()).includes(`${P}-noauth`));
		r = await api("GET", "/sandboxes", undefined, { auth: false, headers: { Authorization: `bearer ${KEY}` } });
		eq("auth: the scheme is case-insensitive ('bearer')", 200, r.status);
		r = await api("GET", "/sandboxes");
		eq("auth: the right key -> 200", 200, r.status);
	} else {
		ok("auth checks # SKIP the server has no API key");
	}
	for (const p of ["/health", "/metrics", "/openapi.json"]) {
		const r = await api("GET", p, undefined, { auth: false, headers: KEY ? { Authorization: "Bearer wrong" } : {} });
		eq(`auth: GET ${p} needs no key`, 200, r.status);
	}

	// ============================================================ envelope
	{
		const r = await api("GET", "/health");
		check("envelope: GET /health is {success: true, data: 'ok'} as JSON",
			r.json?.success === true && r.json?.data === "ok" && (r.headers.get("content-type") ?? "").startsWith("application/json"),
			desc(r));
		const l = await api("GET", "/sandboxes");
		check("envelope: GET /sandboxes is {success: true, data: []}", isEnvelopeOk(l) && Array.isArray(l.json.data), desc(l));
		const e = await api("GET", "/sandboxes/no-such-box");
		check("envelope: an error is {success: false, error: '...'} as JSON",
			isEnvelopeErr(e) && Object.keys(e.json).sort().join() === "error,success" &&
			(e.headers.get("content-type") ?? "").startsWith("application/json"), desc(e));
	}

	// ============================================================ routing: 404, 405
	{
		let r = await api("GET", "/nope");
		expectError("404: unknown route", r, 404);
		r = await api("GET", "/sandboxes/x/nope");
		expectError("404: unknown route under a sandbox", r, 404);
		r = await api("GET", `/sandboxes/${P}-missing`);
		expectError("404: GET unknown sandbox", r, 404);
		r = await api("DELETE", `/sandboxes/${P}-missing`);
		expectError("404: DELETE unknown sandbox", r, 404);
		r = await api("POST", `/sandboxes/${P}-missing/exec`, { command: ["true"] });
		expectError("404: exec in an unknown sandbox", r, 404);
		r = await api("POST", `/sandboxes/${P}-missing/start`);
		expectError("404: start an unknown sandbox", r, 404);
		r = await api("PATCH", `/sandboxes/${P}-missing`, { description: "x" });
		expectError("404: PATCH an unknown sandbox", r, 404);
		r = await api("GET", `/sandboxes/${P}-missing/files/etc/hostname`);
		expectError("404: read a file of an unknown sandbox", r, 404);
		r = await api("POST", `/sandboxes/${P}-missing/exec/stream`, { command: ["true"] });
		expectError("404: exec/stream in an unknown sandbox (before the stream)", r, 404);

		r = await api("PUT", "/health");
		check("405: PUT /health with Allow: GET", r.status === 405 && isEnvelopeErr(r) && r.headers.get("allow") === "GET", desc(r), `Allow: ${r.headers.get("allow")}`);
		r = await api("DELETE", "/sandboxes");
		const allow = (r.headers.get("allow") ?? "").split(/,\s*/).sort().join(",");
		check("405: DELETE /sandboxes with Allow: GET, POST", r.status === 405 && allow === "GET,POST", desc(r), `Allow: ${r.headers.get("allow")}`);
		r = await api("GET", "/run");
		check("405: GET /run with Allow: POST", r.status === 405 && r.headers.get("allow") === "POST", desc(r));
		r = await api("PUT", "/sandboxes/x");
		const allow2 = (r.headers.get("allow") ?? "").split(/,\s*/).sort().join(",");
		check("405: PUT /sandboxes/{name} with Allow: DELETE, GET, PATCH", r.status === 405 && allow2 === "DELETE,GET,PATCH", desc(r), `Allow: ${r.headers.get("allow")}`);
		r = await api("GET", "/sandboxes/");
		eq("routing: a trailing slash is forgiven (GET /sandboxes/)", 200, r.status);
	}

	// ============================================================ create (and 400s on it)
	{
		const r = await create(A, { labels: { team: "core", env: "dev" }, description: "first box", memory_mb: 256 });
		check("create: 201 with SandboxInfo, running", r.status === 201 && r.json?.data?.name === A && r.json.data.status === "running", desc(r));
		eq("create: labels kept", '{"env":"dev","team":"core"}', JSON.stringify(Object.fromEntries(Object.entries(r.json?.data?.labels ?? {}).sort())));
		eq("create: description kept", "first box", r.json?.data?.description);
		const rb = await create(B);
		eq("create: a second sandbox", 201, rb.status);
		const dup = await api("POST", "/sandboxes", { name: A });
		expectError("409: create of a taken name", dup, 409);
		const again = await api("GET", `/sandboxes/${A}`);
		check("409: the existing sandbox is untouched", again.json?.data?.uuid === r.json?.data?.uuid && again.json.data.status === "running", desc(again));
	}
	const bad = [
		["malformed JSON", "POST", "/sandboxes", '{"name": "x",', "invalid JSON"],
		["a JSON array body", "POST", "/sandboxes", "[1,2]", "JSON object"],
		["an empty body", "POST", "/sandboxes", "", null],
		["duplicate keys", "POST", "/sandboxes", `{"name":"${P}-d1","name":"${P}-d2"}`, null],
		["name not a string", "POST", "/sandboxes", { name: 5 }, "name"],
		["memory_mb a string", "POST", "/sandboxes", { name: `${P}-t`, memory_mb: "big" }, "memory_mb"],
		["memory_mb fractional", "POST", "/sandboxes", { name: `${P}-t`, memory_mb: 256.5 }, "memory_mb"],
		["memory_mb out of range", "POST", "/sandboxes", { name: `${P}-t`, memory_mb: 1 }, "memory_mb"],
		["vcpus negative", "POST", "/sandboxes", { name: `${P}-t`, vcpus: -1 }, "vcpus"],
		["labels an array", "POST", "/sandboxes", { name: `${P}-t`, labels: ["a"] }, "labels"],
		["a label value not a string", "POST", "/sandboxes", { name: `${P}-t`, labels: { a: 1 } }, "label"],
		["a bad label key", "POST", "/sandboxes", { name: `${P}-t`, labels: { "bad key!": "v" } }, null],
		["lifecycle with a bad duration", "POST", "/sandboxes", { name: `${P}-t`, lifecycle: { auto_stop_after: "soon" } }, "auto_stop_after"],
		["lifecycle with an unknown field", "POST", "/sandboxes", { name: `${P}-t`, lifecycle: { bogus: 1 } }, "bogus"],
		["an unknown field", "POST", "/sandboxes", { name: `${P}-t`, bogus: true }, "bogus"],
		["an unknown agent", "POST", "/sandboxes", { name: `${P}-t`, agent: "nobody" }, "agent"],
		["a name with a space", "POST", "/sandboxes", { name: "a b" }, "name"],
		["a name starting with '-'", "POST", "/sandboxes", { name: "-x" }, "name"],
		["a name of 64 characters", "POST", "/sandboxes", { name: "a".repeat(64) }, "name"],
		["a name with '/'", "POST", "/sandboxes", { name: "a/b" }, "name"],
		["a name '..'", "POST", "/sandboxes", { name: ".." }, "name"],
		["a non-ASCII name", "POST", "/sandboxes", { name: "bäd" }, "name"],
		["an empty name", "POST", "/sandboxes", { name: "" }, "name"],
		["a name with NUL", "POST", "/sandboxes", { name: "a\u0000b" }, null],
		["secrets (unsupported)", "POST", "/sandboxes", { name: `${P}-t`, secrets: ["S"] }, "secrets"],
	];
	for (const [what, method, path, body, sub] of bad) {
		const r = await api(method, path, body);
		expectError(`400: create with ${what}`, r, 400, sub);
	}
	{
		const left = (await names()).filter((n) => n.startsWith(P) && n !== A && n !== B);
		eq("400: no rejected create left a sandbox behind", "[]", left);
	}
	// Fields a client sends empty for options it does not use are accepted.
	{
		const r = await create(`${P}-c`, { source_url: null, volumes: [], secrets: [], ports: [] });
		eq("create: empty unsupported fields (volumes: [], secrets: []) are accepted", 201, r.status);
		await api("DELETE", `/sandboxes/${P}-c`);
		created.delete(`${P}-c`);
	}

	// ============================================================ no half-created sandbox
	{
		const H = `${P}-half`;
		let r = await create(H, { init_script: "echo setting up; exit 1" });
		check("no half-created sandbox: a create whose init_script exits 1 fails (4xx/5xx, error envelope)",
			r.status >= 400 && isEnvelopeErr(r), desc(r));
		check("no half-created sandbox: it is not in GET /sandboxes", !(await names()).includes(H));
		r = await api("GET", `/sandboxes/${H}`);
		eq("no half-created sandbox: GET it -> 404", 404, r.status);
		r = await create(H);
		eq("no half-created sandbox: the name can be used again", 201, r.status);
		r = await api("DELETE", `/sandboxes/${H}`);
		eq("no half-created sandbox: and removed", 200, r.status);
		created.delete(H);
		const I = `${P}-init`;
		r = await create(I, { init_script: "echo ready > /tmp/init-ran" });
		eq("create: an init_script that succeeds -> 201", 201, r.status);
		r = await api("POST", `/sandboxes/${I}/exec`, { command: ["cat", "/tmp/init-ran"] });
		eq("create: the init_script ran in the sandbox", "ready\n", r.json?.data?.output);
		await api("DELETE", `/sandboxes/${I}`);
		created.delete(I);
	}

	// ============================================================ exec: 400s
	const badExec = [
		["malformed JSON", '{"command": [', "invalid JSON"],
		["command a string", { command: "ls -l" }, "command"],
		["command with a number", { command: ["echo", 1] }, "command"],
		["an empty command", { command: [] }, "command"],
		["a command whose program is ''", { command: [""] }, "command"],
		["no command", {}, "command"],
		["timeout a string", { command: ["true"], timeout: "10" }, "timeout"],
		["timeout 0", { command: ["true"], timeout: 0 }, "timeout"],
		["sudo a string", { command: ["true"], sudo: "yes" }, "sudo"],
		["env an object of numbers", { command: ["true"], env: { A: 1 } }, "env"],
		["env item without '='", { command: ["true"], env: ["A"] }, "env"],
		["a relative workdir", { command: ["true"], workdir: "tmp" }, "workdir"],
		["an unknown field", { command: ["true"], bogus: 1 }, "bogus"],
		["full a number", { command: ["true"], full: 1 }, "full"],
	];
	for (const [what, body, sub] of badExec) {
		const r = await api("POST", `/sandboxes/${A}/exec`, body);
		expectError(`400: exec with ${what}`, r, 400, sub);
	}
	{
		let r = await api("POST", "/run", { command: [] });
		expectError("400: /run with an empty command", r, 400, "command");
		r = await api("POST", "/run", { command: ["true"], volumes: ["/a:/b"] });
		expectError("400: /run with a bad volume entry", r, 400, "invalid volume");
		r = await api("POST", "/batch/run", { commands: [] });
		expectError("400: /batch/run with no commands", r, 400, "commands");
		r = await api("POST", "/batch/run", { commands: [{ command: ["true"] }, { command: [] }] });
		expectError("400: /batch/run with one bad command names it", r, 400, "[1]");
		r = await api("POST", "/sandboxes/-bad-/exec", { command: ["true"] });
		expectError("400: exec with a bad sandbox name in the path", r, 400, "name");
		r = await rawRequest("GET", "/sandboxes/%2e%2e");
		check("400/404: GET /sandboxes/%2e%2e is refused cleanly", (r.status === 400 || r.status === 404) && isEnvelopeErr(r), desc(r));
		r = await rawRequest("GET", "/sandboxes/a%2Fb");
		check("400/404: GET /sandboxes/a%2Fb is refused cleanly", (r.status === 400 || r.status === 404) && isEnvelopeErr(r), desc(r));
	}

	// ============================================================ files: traversal and system paths
	{
		await api("PUT", `/sandboxes/${A}/files/tmp/f.txt`, { content: "inside\n" });
		const trav = [
			["GET", `/sandboxes/${A}/files/tmp/../../etc/shadow`],
			["GET", `/sandboxes/${A}/files/..`],
			["GET", `/sandboxes/${A}/files/tmp/..`],
			["PUT", `/sandboxes/${A}/files/../../../tmp/escape-${P}`],
			["DELETE", `/sandboxes/${A}/files/tmp/../..`],
		];
		for (const [m, p] of trav) {
			const r = await rawRequest(m, p, {
				headers: { "Content-Type": "application/json" },
				body: m === "PUT" ? JSON.stringify({ content: "x" }) : undefined,
			});
			expectError(`400: ${m} ${p.replace(`/sandboxes/${A}`, "")} (path traversal)`, r, 400, "traversal");
		}
		const { existsSync } = await import("node:fs");
		check("files: nothing escaped to the host's /tmp", !existsSync(`/tmp/escape-${P}`));
		let r = await api("POST", `/sandboxes/${A}/files`, { files: { "/tmp/ok.txt": "x", "/tmp/../etc/x": "y" } });
		expectError("400: batch write with '..' in one path", r, 400, "traversal");
		r = await api("GET", `/sandboxes/${A}/files/tmp/ok.txt`);
		eq("400: the batch wrote nothing (checked before writing)", 404, r.status);
		r = await api("POST", `/sandboxes/${A}/files`, { files: { "/tmp/x": 5 } });
		expectError("400: batch write with a non-string content", r, 400);
		r = await api("PUT", `/sandboxes/${A}/files/tmp/x`, { content: 5 });
		expectError("400: PUT with content a number", r, 400, "content");
		r = await api("PUT", `/sandboxes/${A}/files/tmp/x`, { content: "x", bogus: 1 });
		expectError("400: PUT with an unknown field", r, 400, "bogus");
		r = await api("GET", `/sandboxes/${A}/files/proc/self/environ`);
		check("files: /proc is out of reach (403)", r.status === 403 && isEnvelopeErr(r), desc(r));
		r = await api("PUT", `/sandboxes/${A}/files/sys/kernel/x`, { content: "x" });
		check("files: /sys is out of reach (403)", r.status === 403 && isEnvelopeErr(r), desc(r));
		r = await api("GET", `/sandboxes/${A}/files/tmp/f.txt`);
		eq("files: a clean path still works", "inside\n", r.json?.data?.content);
		r = await api("GET", `/sandboxes/${A}/files/tmp/./f.txt`);
		eq("files: '.' segments are harmless", "inside\n", r.json?.data?.content);
		r = await api("DELETE", `/sandboxes/${A}/files/`);
		check("files: DELETE of the root is refused", r.status >= 400 && r.status < 500, desc(r));
		// A symlink inside pointing out must not lead to the host's files.
		await api("POST", `/sandboxes/${A}/exec`, { command: ["ln", "-sf", "/etc/hostname", "/tmp/link"] });
		await api("POST", `/sandboxes/${A}/exec`, { command: ["sh", "-c", "echo sandbox-hostname > /etc/hostname"] });
		r = await api("GET", `/sandboxes/${A}/files/tmp/link`);
		check("files: a symlink resolves inside the sandbox (never the host's file)",
			r.status >= 400 || r.json?.data?.content === "sandbox-hostname\n", desc(r));
	}

	// ============================================================ files: mount points
	// What the sandbox sees as a non-empty directory (a mount point: /usr, /tmp) cannot be
	// deleted without recursive, and a mount point is never deleted: the sandbox's root
	// cannot rmdir them either (EBUSY), and one request must not break a sandbox for good.
	{
		const D = `${P}-del`;
		let r = await create(D);
		r = await api("DELETE", `/sandboxes/${D}/files/tmp?recursive=true`);
		check("files: DELETE /tmp?recursive=true (a mount point) is refused with a 4xx, not a 500", r.status >= 400 && r.status < 500, desc(r));
		r = await api("DELETE", `/sandboxes/${D}/files/usr`);
		check("files: DELETE /usr (a mount point, not empty) without recursive is refused (4xx)", r.status >= 400 && r.status < 500, desc(r));
		r = await api("DELETE", `/sandboxes/${D}/files/tmp`);
		check("files: DELETE /tmp (a mount point) without recursive is refused (4xx)", r.status >= 400 && r.status < 500, desc(r));
		r = await api("POST", `/sandboxes/${D}/exec`, { command: ["/bin/true"], full: true });
		check("files: the sandbox still runs /bin/true after those deletes", r.json?.data?.exit_code === 0, desc(r));
		await api("POST", `/sandboxes/${D}/stop`);
		r = await api("POST", `/sandboxes/${D}/start`);
		check("files: and it still starts after a stop", r.status === 200 && r.json?.data?.status === "running", desc(r));
		await api("DELETE", `/sandboxes/${D}`);
		created.delete(D);
		await api("PUT", `/sandboxes/${A}/files/tmp/dir/f`, { content: "x" });
		r = await api("DELETE", `/sandboxes/${A}/files/tmp/dir`);
		check("files: DELETE of a non-empty directory without recursive is refused (409)", r.status === 409 && isEnvelopeErr(r), desc(r));
		r = await api("DELETE", `/sandboxes/${A}/files/tmp/dir?recursive=true`);
		eq("files: DELETE ?recursive=true of a directory", 200, r.status);
		r = await api("GET", `/sandboxes/${A}/files/tmp/dir/f`);
		eq("files: the directory's files are gone", 404, r.status);
		await api("PUT", `/sandboxes/${A}/files/tmp/emptydir/x`, { content: "" });
		await api("DELETE", `/sandboxes/${A}/files/tmp/emptydir/x`);
		r = await api("DELETE", `/sandboxes/${A}/files/tmp/emptydir`);
		eq("files: DELETE of an empty directory without recursive", 200, r.status);
	}

	// ============================================================ exec: full, timeout
	{
		let r = await api("POST", `/sandboxes/${A}/exec`, { command: ["sh", "-c", "echo out; echo err >&2; exit 5"], full: true });
		check("exec full: 200 on a non-zero exit", r.status === 200 && isEnvelopeOk(r), desc(r));
		const d = r.json?.data ?? {};
		eq("exec full: exit_code, stdout and stderr separately", '{"exit_code":5,"stdout":"out\\n","stderr":"err\\n","timed_out":false}',
			JSON.stringify({ exit_code: d.exit_code, stdout: d.stdout, stderr: d.stderr, timed_out: d.timed_out }));
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["sh", "-c", "exit 5"] });
		check("exec: a non-zero exit without full -> 409 with exit_code beside error",
			r.status === 409 && r.json?.success === false && r.json?.exit_code === 5 && /5/.test(r.json?.error ?? ""), desc(r));
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["no-such-program-xyz"], full: true });
		check("exec full: a missing program -> 200 with exit_code 127", r.status === 200 && r.json?.data?.exit_code === 127, desc(r));
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["sleep", "30"], timeout: 1, full: true });
		check(`exec timeout: sleep 30 with timeout 1 is killed (${r.ms.toFixed(0)} ms)`, r.ms < 5000, desc(r));
		check("exec timeout: exit_code 124 and timed_out true",
			r.status === 200 && r.json?.data?.exit_code === 124 && r.json?.data?.timed_out === true, desc(r));
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["sh", "-c", "sleep 30 & sleep 30"], timeout: 0.5 });
		check("exec timeout without full: 409, exit_code 124, timed_out", r.status === 409 && r.json?.exit_code === 124 && r.json?.timed_out === true, desc(r));
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["sh", "-c", "pgrep -x sleep || true"] });
		eq("exec timeout: the whole command tree is gone", "", r.json?.data?.output);
		r = await api("POST", "/run", { command: ["sleep", "30"], timeout: 1, full: true });
		check("run timeout: exit_code 124, timed_out", r.json?.data?.exit_code === 124 && r.json?.data?.timed_out === true && r.ms < 5000, desc(r));
		r = await api("POST", "/run", { command: ["sh", "-c", "echo o; echo e >&2; exit 2"], full: true });
		check("run full: 200, stdout and stderr separately", r.status === 200 && r.json?.data?.stdout === "o\n" && r.json?.data?.stderr === "e\n" && r.json?.data?.exit_code === 2, desc(r));
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["sh", "-c", "printf 'a\\377b'"], full: true });
		check("exec: output that is not UTF-8 still gives valid JSON", r.status === 200 && typeof r.json?.data?.stdout === "string" && r.json.data.stdout.startsWith("a"), desc(r));
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"] });
		eq("exec: a 3 MB output arrives whole", 3000000, r.json?.data?.output?.length);
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["cat"], full: true, timeout: 5 });
		check("exec: stdin is empty (cat ends at once)", r.json?.data?.exit_code === 0 && r.ms < 4000, desc(r));
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["id", "-u"], user: "nobody" });
		check("exec: user runs as that user", r.status === 200 && r.json?.data?.output !== "0\n", desc(r));
	}

	// ============================================================ exec/stream (SSE)
	{
		const s = await sse(`/sandboxes/${A}/exec/stream`, { command: ["sh", "-c", "echo first; sleep 2; echo second; echo err >&2; exit 3"] });
		const dump = s.events.map((e) => `${e.t.toFixed(0)}ms ${e.event} ${clip(e.data)}`);
		check("exec/stream: 200 text/event-stream", s.status === 200 && (s.headers.get("content-type") ?? "").startsWith("text/event-stream"), `HTTP ${s.status} ${s.text ?? ""}`);
		const types = s.events.map((e) => e.event);
		check("exec/stream: started, then progress", types[0] === "started" && types[1] === "progress", ...dump);
		const started = s.events.find((e) => e.event === "started");
		check("exec/stream: started names the sandbox and the command", started?.data?.sandbox === A && Array.isArray(started?.data?.command), ...dump);
		const outs = s.events.filter((e) => e.event === "output");
		eq("exec/stream: stdout events", "first\nsecond\n", outs.filter((e) => e.data.stream === "stdout").map((e) => e.data.data).join(""));
		eq("exec/stream: stderr events", "err\n", outs.filter((e) => e.data.stream === "stderr").map((e) => e.data.data).join(""));
		const done = s.events.find((e) => e.event === "done");
		check("exec/stream: done {exit_code: 3, success: false} last", types[types.length - 1] === "done" && done?.data?.exit_code === 3 && done?.data?.success === false, ...dump);
		const first = outs[0];
		check("exec/stream: live (first output > 1 s before done)", first && done && done.t - first.t > 1000, ...dump);

		const st = await create(`${P}-stopped`);
		await api("POST", `/sandboxes/${P}-stopped/stop`);
		const s2 = await sse(`/sandboxes/${P}-stopped/exec/stream`, { command: ["true"] });
		check("exec/stream on a stopped sandbox: 409 before any stream", st.status === 201 && s2.status === 409 && !s2.events.length, `HTTP ${s2.status} ${s2.text ?? ""}`);
		const s3 = await sse(`/sandboxes/${A}/exec/stream`, { command: [] });
		eq("exec/stream with an empty command: 400", 400, s3.status);
		const s4 = await sse("/run/stream", { command: ["sh", "-c", "printf 'caf\\303'; sleep 0.3; printf '\\251\\n'"] });
		eq("run/stream: a UTF-8 character split across chunks arrives whole", "café\n",
			s4.events.filter((e) => e.event === "output").map((e) => e.data.data).join(""));
		const s5 = await sse(`/sandboxes/${A}/exec/stream`, { command: ["sleep", "30"], timeout: 1 });
		const d5 = s5.events.find((e) => e.event === "done");
		check("exec/stream timeout: done {exit_code 124, timed_out}", d5?.data?.exit_code === 124 && d5?.data?.timed_out === true && s5.ms < 5000, clip(s5.events));
		const s6 = await sse(`/sandboxes/${A}/exec/stream`, { command: ["no-such-program-xyz"] });
		const d6 = s6.events.find((e) => e.event === "done" || e.event === "error");
		check("exec/stream of a missing program: done with exit_code 127", d6?.event === "done" && d6.data.exit_code === 127, clip(s6.events));
	}

	// ============================================================ start / stop / recover / resize
	{
		let r = await api("POST", `/sandboxes/${B}/exec`, { command: ["sh", "-c", "echo persisted > /root/p.txt"] });
		r = await api("POST", `/sandboxes/${B}/stop`);
		check("stop: 200 with status stopped", r.status === 200 && r.json?.data?.status === "stopped", desc(r));
		r = await api("POST", `/sandboxes/${B}/exec`, { command: ["true"] });
		expectError("exec in a stopped sandbox: 409", r, 409, "not running");
		r = await api("POST", `/sandboxes/${B}/start`);
		check("start: 200 with status running", r.status === 200 && r.json?.data?.status === "running", desc(r));
		r = await api("POST", `/sandboxes/${B}/exec`, { command: ["cat", "/root/p.txt"] });
		eq("stop/start: files written before persist", "persisted\n", r.json?.data?.output);
		r = await api("POST", `/sandboxes/${B}/recover`);
		check("recover of a sandbox that is not archived: 409", r.status === 409 && isEnvelopeErr(r), desc(r));

		r = await api("POST", `/sandboxes/${B}/resize`, { memory_mb: 384, vcpus: 1.5, pids: 256 });
		check("resize: 200, the new limits, applied in place", r.status === 200 && r.json?.data?.memory_mb === 384 && r.json?.data?.pids_limit === 256 && r.json?.data?.applied === true, desc(r));
		r = await api("GET", `/sandboxes/${B}`);
		check("resize: recorded in the state", r.json?.data?.memory_mb === 384 && r.json?.data?.pids_limit === 256, desc(r));
		r = await api("POST", `/sandboxes/${B}/resize`, {});
		expectError("resize with nothing to change: 400", r, 400);
		r = await api("POST", `/sandboxes/${B}/resize`, { memory_mb: 1 });
		expectError("resize with memory_mb 1: 400", r, 400, "memory_mb");
		r = await api("POST", `/sandboxes/${B}/resize`, { memory_mb: 512, disk: 5 });
		expectError("resize with an unknown field: 400", r, 400, "disk");
		r = await api("POST", `/sandboxes/${P}-missing/resize`, { memory_mb: 512 });
		eq("resize of an unknown sandbox: 404", 404, r.status);

		// archive through the lifecycle policy, then recover
		const R = `${P}-arch`;
		r = await create(R, { lifecycle: { auto_archive_after: 1 } });
		check("create with lifecycle {auto_archive_after: 1}", r.status === 201 && r.json?.data?.lifecycle?.auto_archive_after_seconds === 1, desc(r));
		await sleep(2100);
		r = await api("POST", "/lifecycle/reconcile", { dry_run: true });
		const dec = (r.json?.data?.decisions ?? []).find((x) => x.name === R);
		check("reconcile dry_run: decides to archive the inactive sandbox", r.status === 200 && r.json?.data?.dry_run === true && dec?.action === "archive" && typeof dec?.reason === "string", desc(r));
		r = await api("GET", `/sandboxes/${R}`);
		eq("reconcile dry_run: changes nothing", "running", r.json?.data?.status);
		r = await api("POST", "/lifecycle/reconcile", { dry_run: false });
		check("reconcile: archives it", r.status === 200 && (r.json?.data?.decisions ?? []).some((x) => x.name === R && x.action === "archive"), desc(r));
		r = await api("GET", `/sandboxes/${R}`);
		check("reconcile: status archived, archived_at and archived_reason set",
			r.json?.data?.status === "archived" && r.json.data.archived_at && r.json.data.archived_reason, desc(r));
		r = await api("POST", `/sandboxes/${R}/start`);
		check("start of an archived sandbox is refused, naming recover", r.status >= 400 && r.status < 500 && /recover/.test(r.json?.error ?? ""), desc(r));
		r = await api("POST", `/sandboxes/${R}/recover`);
		check("recover: 200, no longer archived", r.status === 200 && r.json?.data?.status !== "archived" && r.json?.data?.archived_at === null, desc(r));
		r = await api("PATCH", `/sandboxes/${R}`, { lifecycle: null });
		r = await api("POST", `/sandboxes/${R}/start`);
		eq("recover: then start works", "running", r.json?.data?.status);
		await api("DELETE", `/sandboxes/${R}`);
		created.delete(R);
	}

	// ============================================================ PATCH, ?label=
	{
		let r = await api("PATCH", `/sandboxes/${B}`, { labels: { team: "web", tier: "1" }, description: "second" });
		check("PATCH: labels and description", r.status === 200 && r.json?.data?.labels?.team === "web" && r.json.data.labels.tier === "1" && r.json.data.description === "second", desc(r));
		r = await api("PATCH", `/sandboxes/${B}`, { labels: { tier: null } });
		check("PATCH: a label set to null is removed, the others stay", r.json?.data?.labels?.team === "web" && !("tier" in (r.json?.data?.labels ?? {})), desc(r));
		r = await api("PATCH", `/sandboxes/${B}`, { lifecycle: { auto_stop_after: "30m", auto_delete_after: 86400 } });
		check("PATCH: lifecycle durations", r.json?.data?.lifecycle?.auto_stop_after_seconds === 1800 && r.json?.data?.lifecycle?.auto_delete_after_seconds === 86400, desc(r));
		r = await api("PATCH", `/sandboxes/${B}`, { lifecycle: null, description: null });
		check("PATCH: lifecycle null and description null clear them", r.json?.data?.lifecycle === null && r.json?.data?.description === null, desc(r));
		r = await api("PATCH", `/sandboxes/${B}`, { labels: { ok: "1" }, lifecycle: { bogus: 1 } });
		expectError("PATCH: a bad field fails the whole change (400)", r, 400, "bogus");
		r = await api("GET", `/sandboxes/${B}`);
		check("PATCH: nothing of the failed change was applied", !("ok" in (r.json?.data?.labels ?? {})), desc(r));
		r = await api("PATCH", `/sandboxes/${B}`, { labels: { "bad key!": "x" } });
		expectError("PATCH: a bad label key: 400", r, 400);
		r = await api("PATCH", `/sandboxes/${B}`, { description: 5 });
		expectError("PATCH: description a number: 400", r, 400, "description");
		r = await api("PATCH", `/sandboxes/${B}`, { name: "rename" });
		expectError("PATCH: an unknown field: 400", r, 400, "name");
		r = await api("PATCH", `/sandboxes/${B}`, "{bad json");
		expectError("PATCH: malformed JSON: 400", r, 400);

		r = await api("GET", "/sandboxes?label=team:core");
		eq("GET /sandboxes?label=team:core", `["${A}"]`, (r.json?.data ?? []).map((s) => s.name).filter((n) => n.startsWith(P)));
		r = await api("GET", "/sandboxes?label=team=web");
		eq("GET /sandboxes?label=team=web (k=v form)", `["${B}"]`, (r.json?.data ?? []).map((s) => s.name).filter((n) => n.startsWith(P)));
		r = await api("GET", "/sandboxes?label=team:core&label=env:dev");
		eq("GET /sandboxes with two labels: both must match", `["${A}"]`, (r.json?.data ?? []).map((s) => s.name).filter((n) => n.startsWith(P)));
		r = await api("GET", "/sandboxes?label=team:core&label=env:prod");
		eq("GET /sandboxes with two labels, one unmatched: none", "[]", r.json?.data);
		r = await api("GET", "/sandboxes?label=nocolon");
		expectError("GET /sandboxes?label=nocolon: 400", r, 400, "label");
	}

	// ============================================================ gc, reconcile, metrics, audit, openapi
	{
		const T = `${P}-ttl`;
		let r = await create(T, { ttl: 1 });
		check("create with ttl 1: expires_at set", r.status === 201 && r.json?.data?.expires_at, desc(r));
		await sleep(1500);
		r = await api("POST", "/gc");
		const removed = (r.json?.data?.removed ?? []).map((x) => (typeof x === "string" ? x : x.name));
		check("POST /gc removes the expired sandbox", r.status === 200 && removed.includes(T), desc(r));
		check("POST /gc keeps the others", !removed.includes(A) && !removed.includes(B), desc(r));
		check("POST /gc lists what it swept of a kill -9's leftovers", Array.isArray(r.json?.data?.swept), desc(r));
		r = await api("GET", `/sandboxes/${T}`);
		eq("POST /gc: the expired sandbox is gone", 404, r.status);
		created.delete(T);

		r = await api("POST", "/lifecycle/reconcile", { dry_run: true });
		check("POST /lifecycle/reconcile {dry_run: true}: {decisions: [], dry_run: true}", r.status === 200 && Array.isArray(r.json?.data?.decisions) && r.json.data.dry_run === true, desc(r));
		r = await api("POST", "/lifecycle/reconcile", { dry_run: "yes" });
		expectError("reconcile with dry_run a string: 400", r, 400, "dry_run");
		r = await api("POST", "/lifecycle/reconcile", { force: true });
		expectError("reconcile with an unknown field: 400", r, 400, "force");

		r = await api("GET", "/metrics", undefined, { auth: false });
		check("GET /metrics: 200 text/plain", r.status === 200 && (r.headers.get("content-type") ?? "").startsWith("text/plain"), desc(r));
		const lines = r.text.split("\n").filter((l) => l && !l.startsWith("#"));
		const badLines = lines.filter((l) => !/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.eE+-]+|NaN|[+-]Inf$/.test(l));
		check("GET /metrics: every sample line is Prometheus text format", lines.length > 0 && !badLines.length, `bad lines: ${clip(badLines)}`);
		check("GET /metrics: agentcell_sandboxes{status=\"running\"} counts ours", (() => {
			const m = r.text.match(/^agentcell_sandboxes\{status="running"\} (\d+)/m);
			return m && Number(m[1]) >= 2;
		})(), clip(r.text));
		check("GET /metrics: exec counters", /^agentcell_exec_total \d+/m.test(r.text) && /^# TYPE agentcell_exec_total counter/m.test(r.text), clip(r.text));

		r = await api("GET", "/audit");
		check("GET /audit: an array of {timestamp, event, sandbox, details}", r.status === 200 && Array.isArray(r.json?.data) && r.json.data.length > 0 && r.json.data.every((e) => e.timestamp && e.event), desc(r));
		const events = new Set((r.json?.data ?? []).filter((e) => e.sandbox === B).map((e) => e.event));
		check("GET /audit: records the API's actions (created started stopped resized labels_changed exec)",
			["created", "started", "stopped", "resized", "labels_changed", "exec"].every((e) => events.has(e)), [...events].join(" "));
		r = await api("GET", "/audit?limit=2");
		check("GET /audit?limit=2: at most 2 entries", r.status === 200 && r.json?.data?.length === 2, desc(r));
		r = await api("GET", `/audit?sandbox=${A}`);
		check(`GET /audit?sandbox=${A}: only that sandbox`, r.status === 200 && r.json?.data?.length > 0 && r.json.data.every((e) => e.sandbox === A), desc(r));
		r = await api("GET", "/audit?limit=abc");
		expectError("GET /audit?limit=abc: 400", r, 400, "limit");
		r = await api("GET", "/audit?sandbox=-bad");
		expectError("GET /audit?sandbox=-bad: 400", r, 400);

		r = await api("GET", "/openapi.json", undefined, { auth: false });
		check("GET /openapi.json: valid JSON with openapi 3.x", r.status === 200 && /^3\./.test(r.json?.openapi ?? ""), desc(r));
		const paths = Object.keys(r.json?.paths ?? {});
		const served = ["/health", "/run", "/run/stream", "/batch/run", "/sandboxes", "/sandboxes/{name}", "/sandboxes/by-uuid/{uuid}",
			"/sandboxes/{name}/exec", "/sandboxes/{name}/exec/stream", "/sandboxes/{name}/exec/detach", "/sandboxes/{name}/files",
			"/sandboxes/{name}/logs", "/sandboxes/{name}/extend", "/sandboxes/{name}/start", "/sandboxes/{name}/stop",
			"/sandboxes/{name}/recover", "/sandboxes/{name}/resize", "/gc", "/lifecycle/reconcile", "/metrics", "/audit"];
		const norm = (p) => p.replace(/\{[^}]+\}/g, "{}");
		const have = new Set(paths.map(norm));
		const missing = served.filter((p) => !have.has(norm(p)));
		check("GET /openapi.json: documents every served route", !missing.length, `missing paths: ${missing.join(" ")}`, `document has ${paths.length} paths`);
	}

	// ============================================================ 413 and big bodies
	{
		const big = 16 * 1024 * 1024 + 1;
		// A client that asks first (Expect: 100-continue, as curl does) is told before it sends.
		let r = await expectContinue("POST", "/sandboxes", big);
		check("413: a body over 16 MiB (Content-Length, Expect: 100-continue) is refused before it is sent",
			r.status === 413 && isEnvelopeErr(r) && !r.continued, desc(r), `100 Continue received: ${r.continued}`);
		// A client that sends at once (fetch, the SDK) must get the 413 too, not a broken
		// connection: the server has to read (and drop) the body or linger before closing.
		const outcomes = [];
		const body = " ".repeat(big);
		for (let i = 0; i < 4; i++) {
			try {
				const f = await fetch(`${BASE}/sandboxes`, { method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body });
				outcomes.push(String(f.status));
				await f.text();
			} catch (e) {
				outcomes.push(`connection error ${e.cause?.code ?? e.message}`);
			}
		}
		check("413: a body over 16 MiB (Content-Length) sent at once by fetch gets the 413 every time (4 tries)",
			outcomes.every((o) => o === "413"), `outcomes: ${outcomes.join(", ")}`);
		r = await rawRequest("POST", `/sandboxes/${A}/exec`, { headers: { "Content-Type": "application/json", "Transfer-Encoding": "chunked" }, chunks: { data: Buffer.alloc(1024 * 1024, 0x20), count: 17 } });
		check("413: a body over 16 MiB (chunked)", r.status === 413 && isEnvelopeErr(r), desc(r));
		const content = "x".repeat(12 * 1024 * 1024);
		r = await api("PUT", `/sandboxes/${A}/files/tmp/big.txt`, { content });
		eq("a 12 MiB body under the limit is accepted (PUT file)", 200, r.status);
		r = await api("GET", `/sandboxes/${A}/files/tmp/big.txt`);
		eq("the 12 MiB file reads back whole", content.length, r.json?.data?.size);
		r = await api("GET", "/health");
		eq("413: the server still answers afterwards", 200, r.status);
	}

	// ============================================================ parallelism
	{
		const long = api("POST", `/sandboxes/${A}/exec`, { command: ["sleep", "3"] });
		await sleep(300);
		let r = await api("POST", `/sandboxes/${B}/exec`, { command: ["echo", "b"] });
		check(`parallel: an exec in B answers while A runs sleep 3 (${r.ms.toFixed(0)} ms < 1000)`, r.status === 200 && r.ms < 1000, desc(r));
		r = await api("GET", "/health");
		check(`parallel: GET /health answers meanwhile (${r.ms.toFixed(0)} ms < 1000)`, r.status === 200 && r.ms < 1000);
		r = await api("GET", `/sandboxes/${A}`);
		check(`parallel: GET the busy sandbox A answers meanwhile (${r.ms.toFixed(0)} ms < 1000)`, r.status === 200 && r.ms < 1000, desc(r));
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["echo", "a2"] });
		check(`parallel: a second exec in A itself answers meanwhile (${r.ms.toFixed(0)} ms < 1000)`, r.status === 200 && r.ms < 1000, desc(r));
		const l = await long;
		check("parallel: the long exec completes", l.status === 200 && l.ms >= 2900, desc(l));

		// a long event stream does not block the others
		const t0 = now();
		let firstAt = -1;
		const stream = sse(`/sandboxes/${A}/exec/stream`, { command: ["sh", "-c", "echo go; sleep 3; echo end"] }, (ev) => {
			if (ev.event === "output" && firstAt < 0) firstAt = now() - t0;
		});
		await sleep(500);
		const rs = await Promise.all([
			api("GET", "/sandboxes"),
			api("POST", `/sandboxes/${B}/exec`, { command: ["true"] }),
			api("GET", "/health"),
			api("GET", `/sandboxes/${A}/files/tmp/f.txt`),
		]);
		check(`parallel: 4 requests during a long stream all answer in < 1 s (${rs.map((x) => x.ms.toFixed(0)).join(" ")} ms)`,
			rs.every((x) => x.status === 200 && x.ms < 1000), rs.map(desc).join("\n"));
		const s = await stream;
		check("parallel: the stream still ends with done", s.events.some((e) => e.event === "done"), clip(s.events));

		// burst: many at once
		const burst = await Promise.all([
			...Array.from({ length: 16 }, (_, i) => api("POST", `/sandboxes/${i % 2 ? A : B}/exec`, { command: ["echo", String(i)] })),
			...Array.from({ length: 16 }, () => api("GET", "/sandboxes")),
		]);
		const wrong = burst.filter((x, i) => x.status !== 200 || (i < 16 && x.json?.data?.output !== `${i}\n`));
		check("parallel: 16 execs and 16 lists at once all answer correctly", !wrong.length, wrong.map(desc).join("\n"));

		// a client that goes away mid-stream
		const gone = await sse(`/sandboxes/${A}/exec/stream`,
			{ command: ["sh", "-c", "i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); sleep 0.05; done; echo finished > /tmp/after-disconnect"] },
			(ev) => (ev.event === "output" ? "abort" : undefined));
		check("disconnect: the client aborted after the first output", gone.aborted, clip(gone.events));
		r = await api("GET", "/health");
		eq("disconnect: the server still answers", 200, r.status);
		await sleep(2500);
		r = await api("POST", `/sandboxes/${A}/exec`, { command: ["sh", "-c", "cat /tmp/after-disconnect 2>/dev/null || echo cancelled"] });
		eq("disconnect: the command went with its client (it never reached its end)", "cancelled\n", r.json?.data?.output);
		const g2 = await sse("/run/stream", { command: ["sh", "-c", "yes | head -c 20000000"] }, (ev) => (ev.event === "output" ? "abort" : undefined));
		check("disconnect: abort of a fast 20 MB stream", g2.aborted, clip(g2.events.slice(0, 2)));
		await sleep(300);
		r = await api("POST", `/sandboxes/${B}/exec`, { command: ["echo", "alive"] });
		eq("disconnect: the server still runs commands afterwards", "alive\n", r.json?.data?.output);
	}

	// ============================================================ remove
	{
		let r = await api("DELETE", `/sandboxes/${A}`);
		check("DELETE: 200 success", r.status === 200 && isEnvelopeOk(r), desc(r));
		created.delete(A);
		r = await api("GET", `/sandboxes/${A}`);
		eq("DELETE: then 404", 404, r.status);
		r = await api("DELETE", `/sandboxes/${B}`);
		created.delete(B);
		await api("DELETE", `/sandboxes/${P}-stopped`);
		created.delete(`${P}-stopped`);
		const left = (await names()).filter((n) => n.startsWith(P));
		eq("DELETE: none of this test's sandboxes is left", "[]", left);
	}
}

async function cleanup() {
	for (const n of created) {
		try {
			await api("DELETE", `/sandboxes/${n}`);
		} catch {
			/* gone */
		}
	}
}

try {
	await main();
} catch (err) {
	notOk("the scenario ran to its end", `${err?.name}: ${err?.message}`, err?.stack ?? "");
} finally {
	await cleanup();
}
finish("api_raw");
