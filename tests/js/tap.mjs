// Reporting shared by the HTTP API tests (sdk_scenario.mjs, api_raw.mjs): one
// "ok - <desc>" / "not ok - <desc>" line per check, diagnostics as "#   " lines, and a
// summary line "# NAME: N passed, N failed" that test_api.sh looks for.
let passed = 0;
let failed = 0;

export function clip(v) {
	let s;
	try {
		s = typeof v === "string" ? v : JSON.stringify(v);
	} catch {
		s = String(v);
	}
	if (s === undefined) s = String(v);
	return s.length > 2000 ? `${s.slice(0, 2000)}...` : s;
}
export function diag(lines) {
	for (const l of lines) for (const s of String(l).split("\n")) console.log(`#   ${s}`);
}
export function ok(desc) {
	passed++;
	console.log(`ok - ${desc}`);
}
export function notOk(desc, ...why) {
	failed++;
	console.log(`not ok - ${desc}`);
	diag(why);
}
export function check(desc, cond, ...why) {
	if (cond) ok(desc);
	else notOk(desc, ...why);
	return !!cond;
}
export function eq(desc, expected, actual) {
	const e = clip(expected);
	const a = clip(actual);
	return check(desc, e === a, `expected: ${e}`, `actual:   ${a}`);
}
// Runs fn; a throw is a failed check (with the error), else fn decides.
export async function step(desc, fn) {
	try {
		return await fn();
	} catch (err) {
		notOk(desc, `threw ${err?.name}: ${err?.message}`);
		return undefined;
	}
}
// Prints the summary line and exits 1 if any check failed.
export function finish(name) {
	console.log(`# ${name}: ${passed} passed, ${failed} failed`);
	process.exit(failed ? 1 : 0);
}
