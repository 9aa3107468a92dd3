// The npm agentkernel@0.18.1 SDK, unchanged, against a running `agentcell serve`: every SDK
// method that maps to an endpoint agentcell serves.
//
//   node tests/js/sdk_scenario.mjs [BASE_URL [API_KEY]]
//   (or AGENTCELL_URL / AGENTCELL_API_KEY in the environment)
//
// One line per check: "ok - <desc>" or "not ok - <desc>" followed by "#   " diagnostics.
// Exits 1 if any check failed. Sandboxes it creates are named sdk-<pid>-*, and removed at
// the end whatever happened.
import {
	AgentKernel,
	AgentKernelError,
	AuthError,
	NotFoundError,
	ServerError,
	ValidationError,
} from "agentkernel";

import { check, clip, diag, eq, finish, notOk, ok, step } from "./tap.mjs";
const BASE = process.argv[2] || process.env.AGENTCELL_URL || "http://127.0.0.1:18888";
const KEY = process.argv[3] || process.env.AGENTCELL_API_KEY || undefined;
const P = `sdk-${process.pid}`;
const SUDO = process.env.AGENTCELL_SUDO === "allowed";

// Expects fn to throw an error of class cls; returns the error.
async function throws(desc, cls, fn, more) {
	try {
		const r = await fn();
		notOk(desc, `did not throw; returned ${clip(r)}`);
		return undefined;
	} catch (err) {
		if (!(err instanceof cls)) {
			notOk(desc, `expected ${cls.name}, got ${err?.name}: ${err?.message}`);
			return err;
		}
		if (more) {
			const why = more(err);
			if (why) {
				notOk(desc, why, `message: ${err.message}`);
				return err;
			}
		}
		ok(desc);
		return err;
	}
}

// The SDK calls the global fetch: a spy (outside the SDK) records each response's status.
const realFetch = globalThis.fetch;
let lastStatus = 0;
globalThis.fetch = async (...args) => {
	const r = await realFetch(...args);
	lastStatus = r.status;
	return r;
};

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const client = new AgentKernel({ baseUrl: BASE, apiKey: KEY, timeout: 60000 });
const created = new Set();

async function main() {
	console.log(`# sdk_scenario: ${BASE} (${KEY ? "with" : "without"} API key)`);

	// ============================================================ health
	await step("health() answers ok", async () => {
		eq("health() answers ok", "ok", await client.health());
	});

	// ============================================================ run
	await step("run() returns the output", async () => {
		const r = await client.run(["sh", "-c", "echo hello; echo oops >&2"]);
		eq("run() returns the output (stdout then stderr)", "hello\noops\n", r?.output);
	});
	await step("run() passes arguments unchanged", async () => {
		const r = await client.run(["printf", "%s|", "a b", "", "ü", "$HOME"]);
		eq("run() passes arguments unchanged", "a b||ü|$HOME|", r?.output);
	});
	await throws(
		"run() of a command exiting 3 throws the server's 409 message with the exit code",
		ServerError,
		() => client.run(["sh", "-c", "echo partial; exit 3"]),
		(e) => {
			if (lastStatus !== 409) return `HTTP status ${lastStatus}, expected 409`;
			if (!/\b3\b/.test(e.message)) return "message lacks the exit code 3";
			if (!e.message.includes("partial")) return "message lacks the output";
			return null;
		},
	);
	await throws("run([]) throws ValidationError", ValidationError, () => client.run([]));

	// ============================================================ runStream
	await step("runStream()", async () => {
		const t0 = now();
		const events = [];
		for await (const ev of client.runStream(["sh", "-c", "echo first; sleep 2; echo second; echo e >&2"])) {
			events.push({ ...ev, t: now() - t0 });
		}
		const types = events.map((e) => e.type);
		const dump = events.map((e) => `${e.t.toFixed(0)}ms ${e.type} ${clip(e.data)}`);
		check("runStream(): a 'started' event comes first", types[0] === "started", ...dump);
		check("runStream(): a 'progress' event", types.includes("progress"), ...dump);
		const outs = events.filter((e) => e.type === "output");
		const stdout = outs.filter((e) => e.data.stream === "stdout").map((e) => e.data.data).join("");
		const stderr = outs.filter((e) => e.data.stream === "stderr").map((e) => e.data.data).join("");
		eq("runStream(): output events carry stdout", "first\nsecond\n", stdout);
		eq("runStream(): output events carry stderr (stream: stderr)", "e\n", stderr);
		const done = events.find((e) => e.type === "done");
		check("runStream(): ends with done {exit_code: 0, success: true}",
			done && types[types.length - 1] === "done" && done.data.exit_code === 0 && done.data.success === true,
			...dump);
		const first = outs.find((e) => String(e.data.data).includes("first"));
		check("runStream(): output is live (first output > 1 s before done)",
			first && done && done.t - first.t > 1000, ...dump);
	});
	await step("runStream() of a failing command", async () => {
		const events = [];
		for await (const ev of client.runStream(["sh", "-c", "exit 7"])) events.push(ev);
		const done = events.find((e) => e.type === "done");
		check("runStream(): done {exit_code: 7, success: false} for a failing command",
			done && done.data.exit_code === 7 && done.data.success === false, clip(events));
	});
	// agentkernel answers an empty command with a stream of one error event (issue 17).
	await step("runStream([])", async () => {
		const events = [];
		for await (const e of client.runStream([])) events.push(e);
		eq("runStream([]): one error event, 'command is required'",
			'[{"type":"error","data":{"message":"command is required"}}]', events);
	});

	// ============================================================ batchRun
	await step("batchRun()", async () => {
		const t0 = now();
		const r = await client.batchRun([
			{ command: ["sh", "-c", "sleep 1; echo one"] },
			{ command: ["sh", "-c", "sleep 1; echo two"] },
			{ command: ["sh", "-c", "sleep 1; echo three"] },
		]);
		const ms = now() - t0;
		eq("batchRun(): results in input order",
			'["one\\n","two\\n","three\\n"]', (r?.results ?? []).map((x) => x.output));
		check("batchRun(): no error on success", (r?.results ?? []).every((x) => x.error === null), clip(r));
		check(`batchRun(): 3 x sleep 1 run concurrently (< 2.5 s; took ${ms.toFixed(0)} ms)`, ms < 2500);
	});
	await step("batchRun() with a failing command", async () => {
		const r = await client.batchRun([{ command: ["echo", "a"] }, { command: ["sh", "-c", "exit 4"] }, { command: ["echo", "c"] }]);
		const res = r?.results ?? [];
		check("batchRun(): the failing command has an error, the others output",
			res.length === 3 && res[0].output === "a\n" && res[0].error === null &&
			typeof res[1].error === "string" && res[1].error.includes("4") && res[2].output === "c\n",
			clip(r));
	});

	// ============================================================ sandboxes
	const A = `${P}-a`;
	created.add(A);
	const info = await step("createSandbox()", () =>
		client.createSandbox(A, { vcpus: 2, memory_mb: 256, profile: "moderate" }));
	if (info) {
		eq("createSandbox(): HTTP 201", 201, lastStatus);
		eq("createSandbox(): name", A, info.name);
		eq("createSandbox(): status running", "running", info.status);
		eq("createSandbox(): vcpus", 2, info.vcpus);
		eq("createSandbox(): memory_mb", 256, info.memory_mb);
		check("createSandbox(): backend and image are strings",
			typeof info.backend === "string" && info.backend && typeof info.image === "string", clip(info));
		check("createSandbox(): uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(info.uuid ?? ""), clip(info));
		check("createSandbox(): created_at is RFC 3339", TIME_RE.test(info.created_at ?? ""), clip(info));
		const fields = ["labels", "description", "last_activity_at", "archived_at", "archived_reason", "lifecycle", "expires_at"];
		check("createSandbox(): every SandboxInfo field is present",
			fields.every((f) => f in info), `missing: ${fields.filter((f) => !(f in info)).join(" ")}`);
	}
	await throws("createSandbox() of a taken name throws (409)", ServerError,
		() => client.createSandbox(A), () => (lastStatus === 409 ? null : `HTTP status ${lastStatus}`));

	await step("listSandboxes()", async () => {
		const l = await client.listSandboxes();
		const me = Array.isArray(l) ? l.find((s) => s.name === A) : undefined;
		check("listSandboxes(): an array holding the new sandbox, running", me && me.status === "running", clip(l));
	});
	const got = await step("getSandbox()", () => client.getSandbox(A));
	if (got) {
		eq("getSandbox(): the same uuid", info?.uuid, got.uuid);
		eq("getSandbox(): status running", "running", got.status);
	}
	await step("getSandboxByUuid()", async () => {
		const u = await client.getSandboxByUuid(info?.uuid ?? "none");
		eq("getSandboxByUuid(): finds it by uuid", A, u?.name);
	});
	await throws("getSandboxByUuid() of an unknown uuid throws NotFoundError", NotFoundError,
		() => client.getSandboxByUuid("00000000-0000-7000-8000-000000000000"));

	// ============================================================ execInSandbox
	await step("execInSandbox()", async () => {
		const r = await client.execInSandbox(A, ["sh", "-c", "echo in-$HOSTNAME-ok"]);
		check("execInSandbox(): returns the output", typeof r?.output === "string" && r.output.endsWith("-ok\n"), clip(r));
	});
	await step("execInSandbox() env", async () => {
		const r = await client.execInSandbox(A, ["sh", "-c", 'echo "$FOO|$BAR"'], { env: ["FOO=bar baz", "BAR=x=y"] });
		eq("execInSandbox(): env is passed", "bar baz|x=y\n", r?.output);
	});
	await step("execInSandbox() workdir", async () => {
		const r = await client.execInSandbox(A, ["pwd"], { workdir: "/tmp" });
		eq("execInSandbox(): workdir is the working directory", "/tmp\n", r?.output);
	});
	// sudo follows agentkernel's rule: refused unless the operator set [api]
	// allow_sudo_exec (AGENTCELL_SUDO=allowed says this server has it).
	if (SUDO) {
		await step("execInSandbox() sudo", async () => {
			const r = await client.execInSandbox(A, ["id", "-u"], { sudo: true });
			eq("execInSandbox(): sudo runs as root", "0\n", r?.output);
		});
	} else {
		await throws("execInSandbox() sudo is refused without [api] allow_sudo_exec", AgentKernelError,
			() => client.execInSandbox(A, ["id", "-u"], { sudo: true }),
			(e) => (lastStatus !== 403 ? `HTTP status ${lastStatus}` : /allow_sudo_exec/.test(e.message) ? null : "the message does not name allow_sudo_exec"));
	}
	await step("execInSandbox() state persists", async () => {
		await client.execInSandbox(A, ["sh", "-c", "echo kept > /tmp/state"]);
		const r = await client.execInSandbox(A, ["cat", "/tmp/state"]);
		eq("execInSandbox(): files persist between execs", "kept\n", r?.output);
	});
	await throws("execInSandbox() non-zero exit throws with the exit code", ServerError,
		() => client.execInSandbox(A, ["sh", "-c", "exit 42"]),
		(e) => (lastStatus !== 409 ? `HTTP status ${lastStatus}` : /42/.test(e.message) ? null : "no exit code in the message"));
	await throws("execInSandbox() in an unknown sandbox throws NotFoundError", NotFoundError,
		() => client.execInSandbox(`${P}-nope`, ["true"]));
	await throws("execInSandbox() with a relative workdir throws ValidationError", ValidationError,
		() => client.execInSandbox(A, ["true"], { workdir: "relative" }));
	await throws("execInSandbox() with a bad env item throws ValidationError", ValidationError,
		() => client.execInSandbox(A, ["true"], { env: ["NOEQUALS"] }));

	// ============================================================ files
	await step("writeFile()/readFile() utf8", async () => {
		const text = "héllo wörld\nline 2 ✓\n";
		await client.writeFile(A, "tmp/t.txt", text);
		const r = await client.readFile(A, "tmp/t.txt");
		eq("readFile(): utf8 content read back", text, r?.content);
		eq("readFile(): encoding utf8", "utf8", r?.encoding);
		eq("readFile(): size in bytes", Buffer.byteLength(text), r?.size);
		const x = await client.execInSandbox(A, ["cat", "/tmp/t.txt"]);
		eq("writeFile(): the command in the sandbox sees the file", text, x?.output);
	});
	await step("readFile() absolute path", async () => {
		const r = await client.readFile(A, "/tmp/t.txt");
		check("readFile(): a leading '/' in the path works too", r?.content?.startsWith("héllo"), clip(r));
	});
	await step("writeFile()/readFile() base64 binary", async () => {
		const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a, 0xc3, 0x28, 0x41, 0x00]);
		await client.writeFile(A, "tmp/bin.dat", bytes.toString("base64"), { encoding: "base64" });
		const r = await client.readFile(A, "tmp/bin.dat");
		eq("readFile(): bytes that are not UTF-8 come back as base64", "base64", r?.encoding);
		eq("readFile(): the same bytes", bytes.toString("base64"), r?.content);
		eq("readFile(): size of binary file", bytes.length, r?.size);
		const x = await client.execInSandbox(A, ["sh", "-c", "od -An -tx1 /tmp/bin.dat | tr -d ' \\n'"]);
		eq("writeFile(base64): the sandbox sees the exact bytes", bytes.toString("hex"), x?.output);
	});
	await step("writeFile() base64 of UTF-8 text", async () => {
		await client.writeFile(A, "tmp/b64text", Buffer.from("plain\n").toString("base64"), { encoding: "base64" });
		const r = await client.readFile(A, "tmp/b64text");
		check("readFile(): UTF-8 bytes written as base64 read back as utf8 text",
			r?.encoding === "utf8" && r?.content === "plain\n" && r?.size === 6, clip(r));
	});
	await step("writeFile() empty file", async () => {
		await client.writeFile(A, "tmp/empty", "");
		const r = await client.readFile(A, "tmp/empty");
		check("readFile(): an empty file: content '', size 0", r?.content === "" && r?.size === 0, clip(r));
	});
	await step("deleteFile()", async () => {
		await client.deleteFile(A, "tmp/t.txt");
		ok("deleteFile() succeeds");
	});
	await throws("readFile() after deleteFile() throws NotFoundError", NotFoundError, () => client.readFile(A, "tmp/t.txt"));
	await throws("readFile() of a missing file throws NotFoundError", NotFoundError, () => client.readFile(A, "no/such/file"));
	await throws("writeFile() with an unknown encoding throws ValidationError", ValidationError,
		() => client.writeFile(A, "tmp/x", "x", { encoding: "latin1" }));
	await throws("writeFile() with invalid base64 throws ValidationError", ValidationError,
		() => client.writeFile(A, "tmp/x", "***", { encoding: "base64" }));
	await throws("readFile() in an unknown sandbox throws NotFoundError", NotFoundError,
		() => client.readFile(`${P}-nope`, "etc/hostname"));
	await step("writeFiles()", async () => {
		const r = await client.writeFiles(A, { "/tmp/w/a.txt": "A\n", "/tmp/w/sub/b.txt": "B\n", "/tmp/w/c.txt": "" });
		eq("writeFiles(): {written: 3}", 3, r?.written);
		const x = await client.execInSandbox(A, ["sh", "-c", "cat /tmp/w/a.txt /tmp/w/sub/b.txt; wc -c < /tmp/w/c.txt"]);
		eq("writeFiles(): every file is there (parents created)", "A\nB\n0\n", x?.output);
	});
	await throws("writeFiles() with a relative path throws ValidationError", ValidationError,
		() => client.writeFiles(A, { "rel.txt": "x" }));

	// ============================================================ logs
	await step("getSandboxLogs()", async () => {
		const l = await client.getSandboxLogs(A);
		check("getSandboxLogs(): an array of audit entries", Array.isArray(l) && l.length > 0, clip(l));
		const evs = new Set((l ?? []).map((e) => e.event));
		check("getSandboxLogs(): has created, started and exec entries", evs.has("created") && evs.has("started") && evs.has("exec"), [...evs].join(" "));
		check("getSandboxLogs(): every entry is {timestamp, event, sandbox, details} of this sandbox",
			(l ?? []).every((e) => TIME_RE.test(e.timestamp) && typeof e.event === "string" && e.sandbox === A && "details" in e),
			clip(l?.slice(0, 3)));
		const env = (l ?? []).some((e) => JSON.stringify(e).includes("bar baz"));
		check("getSandboxLogs(): environment values are not in the audit", !env);
	});
	await throws("getSandboxLogs() of an unknown sandbox throws NotFoundError", NotFoundError,
		() => client.getSandboxLogs(`${P}-nope`));

	// ============================================================ detached
	const d = await step("execDetached()", () =>
		client.execDetached(A, ["sh", "-c", "echo out; echo err >&2; sleep 1; exit 3"]));
	if (d) {
		check("execDetached(): returns {id, sandbox, command, status running}",
			typeof d.id === "string" && d.id && d.sandbox === A && Array.isArray(d.command) && d.status === "running", clip(d));
		check("execDetached(): pid and started_at", typeof d.pid === "number" && TIME_RE.test(d.started_at ?? ""), clip(d));
		let st;
		const t0 = now();
		while (now() - t0 < 10000) {
			st = await client.detachedStatus(A, d.id);
			if (st?.status !== "running") break;
			await sleep(100);
		}
		check("detachedStatus(): the command finishes with exit_code 3 (status " + st?.status + ")",
			st && st.status !== "running" && st.exit_code === 3, clip(st));
		const logs = await client.detachedLogs(A, d.id);
		eq("detachedLogs(): stdout", "out\n", logs?.stdout);
		eq("detachedLogs(): stderr alongside", "err\n", logs?.stderr);
		const errs = await client.detachedLogs(A, d.id, "stderr");
		eq("detachedLogs(stderr): stderr", "err\n", errs?.stderr);
		check("detachedLogs(stderr): no stdout", errs?.stdout === undefined, clip(errs));
	}
	const d2 = await step("execDetached() with env and workdir", () =>
		client.execDetached(A, ["sh", "-c", 'echo "$V $(pwd)"'], { env: ["V=vee"], workdir: "/tmp", ...(SUDO ? { sudo: true } : {}) }));
	if (d2) {
		let st;
		const t0 = now();
		while (now() - t0 < 10000) {
			st = await client.detachedStatus(A, d2.id);
			if (st?.status !== "running") break;
			await sleep(100);
		}
		eq("detachedStatus(): completed with exit_code 0", "completed/0", `${st?.status}/${st?.exit_code}`);
		const logs = await client.detachedLogs(A, d2.id);
		eq("execDetached(): env and workdir apply", "vee /tmp\n", logs?.stdout);
	}
	const d3 = await step("execDetached() long", () => client.execDetached(A, ["sleep", "60"]));
	if (d3) {
		const l = await step("detachedList()", () => client.detachedList(A));
		const ids = Array.isArray(l) ? l.map((x) => x.id) : [];
		check("detachedList(): lists every detached command of the sandbox",
			[d?.id, d2?.id, d3.id].every((i) => ids.includes(i)), clip(l));
		const running = Array.isArray(l) ? l.find((x) => x.id === d3.id) : undefined;
		eq("detachedList(): the long one is running", "running", running?.status);
		await step("detachedKill()", async () => {
			await client.detachedKill(A, d3.id);
			ok("detachedKill() succeeds");
		});
		let st;
		const t0 = now();
		while (now() - t0 < 5000) {
			st = await client.detachedStatus(A, d3.id);
			if (st?.status !== "running") break;
			await sleep(100);
		}
		check("detachedKill(): the command is no longer running", st && st.status !== "running", clip(st));
		const x = await client.execInSandbox(A, ["sh", "-c", "pgrep -x sleep || true"]);
		eq("detachedKill(): its process is gone", "", x?.output);
	}
	await throws("detachedStatus() of an unknown id throws NotFoundError", NotFoundError,
		() => client.detachedStatus(A, "000000000000"));
	await throws("detachedList() of an unknown sandbox throws NotFoundError", NotFoundError,
		() => client.detachedList(`${P}-nope`));

	// ============================================================ extendTtl
	await step("extendTtl()", async () => {
		const before = (await client.getSandbox(A))?.expires_at ?? null;
		eq("no TTL: expires_at is null", null, before);
		const t = Date.now();
		const r1 = await client.extendTtl(A, { by: "1h" });
		const e1 = Date.parse(r1?.expires_at ?? "");
		check("extendTtl(1h): expires_at is about now + 1 h",
			Math.abs(e1 - (t + 3600000)) < 10000, clip(r1));
		const r2 = await client.extendTtl(A, { by: "30m" });
		const e2 = Date.parse(r2?.expires_at ?? "");
		eq("extendTtl(30m): expires_at moves 30 min later", 1800000, e2 - e1);
		const g = await client.getSandbox(A);
		eq("getSandbox(): shows the new expires_at", r2?.expires_at, g?.expires_at);
	});
	await throws("extendTtl() with a bad duration throws ValidationError", ValidationError,
		() => client.extendTtl(A, { by: "soon" }));
	await throws("extendTtl() of an unknown sandbox throws NotFoundError", NotFoundError,
		() => client.extendTtl(`${P}-nope`, { by: "1h" }));

	// ============================================================ removeSandbox
	await step("removeSandbox()", async () => {
		await client.removeSandbox(A);
		ok("removeSandbox() succeeds");
		created.delete(A);
	});
	await throws("getSandbox() after removeSandbox() throws NotFoundError", NotFoundError, () => client.getSandbox(A));
	await throws("removeSandbox() again throws NotFoundError", NotFoundError, () => client.removeSandbox(A));

	// ============================================================ sandbox() session
	const S = `${P}-session`;
	created.add(S);
	await step("sandbox() session", async () => {
		const sb = await client.sandbox(S);
		try {
			eq("sandbox(): session has the name", S, sb.name);
			const r = await sb.run(["sh", "-c", "echo $((6*7))"]);
			eq("session.run(): output", "42\n", r?.output);
			const r2 = await sb.run(["pwd"], { workdir: "/tmp" });
			eq("session.run(): options pass through", "/tmp\n", r2?.output);
			const i = await sb.info();
			eq("session.info(): running", "running", i?.status);
			const w = await sb.writeFiles({ "/tmp/s.txt": "session\n" });
			eq("session.writeFiles(): written 1", 1, w?.written);
			const c = await sb.run(["cat", "/tmp/s.txt"]);
			eq("session: the written file is there", "session\n", c?.output);
		} finally {
			await sb[Symbol.asyncDispose](); // what `await using` calls at scope exit
		}
		await sb.remove(); // idempotent: no second request
		created.delete(S);
	});
	await throws("after the session's scope the sandbox is gone (NotFoundError)", NotFoundError, () => client.getSandbox(S));

	// ============================================================ errors
	await throws("getSandbox() of an unknown sandbox throws NotFoundError", NotFoundError, () => client.getSandbox(`${P}-nope`));
	await throws("createSandbox() with a bad name throws ValidationError", ValidationError,
		() => client.createSandbox("bad name!"));
	await throws("createSandbox() with memory_mb 1 throws ValidationError", ValidationError,
		() => client.createSandbox(`${P}-tiny`, { memory_mb: 1 }));
	await throws("createSandbox() with an unsupported volumes option throws ValidationError", ValidationError,
		() => client.createSandbox(`${P}-vol`, { volumes: ["/a:/b"] }));
	await throws("getSandbox() with an invalid name throws ValidationError", ValidationError,
		() => client.getSandbox("-bad-"));
	const bad = new AgentKernel({ baseUrl: BASE, apiKey: "wrong-key", timeout: 10000 });
	if (KEY) {
		await throws("a wrong API key throws AuthError 'Invalid API key'", AuthError, () => bad.listSandboxes(),
			(e) => (e.message === "Invalid API key" ? null : "other message"));
		const none = new AgentKernel({ baseUrl: BASE, timeout: 10000 });
		await throws("no API key throws AuthError", AuthError, () => none.listSandboxes());
		await step("health() works with a wrong key", async () => {
			eq("health() needs no key", "ok", await bad.health());
		});
	} else {
		ok("a wrong API key throws AuthError # SKIP the server has no API key");
	}
	check("every SDK error is an AgentKernelError", new NotFoundError() instanceof AgentKernelError);
}

async function cleanup() {
	for (const n of created) {
		try {
			await client.removeSandbox(n);
		} catch {
			/* already gone */
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
finish("sdk_scenario");
