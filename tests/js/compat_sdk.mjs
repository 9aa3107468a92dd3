// The npm agentkernel@0.18.1 SDK's methods with the fields agentkernel's users pass
// (issue 17), against a running server (test_compat_api.sh starts it as `agentkernel serve`):
// createSandbox with volumes, empty source_url/secrets and a profile; extendTtl without
// `by` (an hour); run with fast and a Docker reference (alpine:3.20, in the image store);
// execInSandbox with workdir, env and sudo (refused: 403 unless [api] allow_sudo_exec).
//
//   node tests/js/compat_sdk.mjs BASE_URL [API_KEY]
import { AgentKernel, AgentKernelError } from "agentkernel";

import { check, clip, eq, finish, notOk, step } from "./tap.mjs";
const BASE = process.argv[2] || "http://127.0.0.1:18888";
const KEY = process.argv[3] || undefined;
const N = `cksdk-${process.pid}`;
const ak = new AgentKernel({ baseUrl: BASE, apiKey: KEY, timeout: 120000 });

try {
	const info = await step("createSandbox with agentkernel's options", () =>
		ak.createSandbox(N, {
			image: "alpine:3.20",
			profile: "moderate",
			source_url: undefined,
			volumes: [],
			secrets: [],
			secret_files: [],
		}),
	);
	if (info) {
		eq("createSandbox: running", "running", info.status);
		eq("createSandbox: backend native", "native", info.backend);
	}
	const out = await step("execInSandbox with workdir and env", () =>
		ak.execInSandbox(N, ["sh", "-c", "pwd; echo $CKV"], { workdir: "/tmp", env: ["CKV=sdk"] }),
	);
	if (out) eq("execInSandbox: workdir and env", "/tmp\nsdk\n", out.output);
	try {
		const r = await ak.execInSandbox(N, ["id", "-u"], { sudo: true });
		notOk("execInSandbox sudo: refused without [api] allow_sudo_exec", `returned ${clip(r)}`);
	} catch (err) {
		check(
			"execInSandbox sudo: refused without [api] allow_sudo_exec",
			err instanceof AgentKernelError && /allow_sudo_exec/.test(err.message),
			`got ${err?.name} ${err?.status}: ${err?.message}`,
		);
	}
	const before = Date.now();
	const ext = await step("extendTtl without by", () => ak.extendTtl(N, {}));
	if (ext) {
		const at = Date.parse(ext.expires_at);
		check(
			"extendTtl without by: an hour",
			at >= before + 3590e3 && at <= Date.now() + 3700e3,
			`expires_at ${ext.expires_at}`,
		);
	}
	const run = await step("run fast with image alpine:3.20", () =>
		ak.run(["cat", "/etc/os-release"], { image: "alpine:3.20", fast: true }),
	);
	if (run) check("run fast with alpine:3.20: the image's files", /PRETTY_NAME="compat-/.test(run.output), clip(run));
	const run2 = await step("run with the SDK's defaults (fast)", () => ak.run(["echo", "defaults"]));
	if (run2) eq("run with the SDK's defaults", "defaults\n", run2.output);
} finally {
	await ak.removeSandbox(N).catch(() => {});
}
finish("compat_sdk");
