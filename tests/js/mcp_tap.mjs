// Reporting shared by the MCP client tests (mcp_stdio.mjs, mcp_http.mjs): one
// "ok - ..." / "not ok - ..." line per check, diagnostics as "#   " lines, and small readers
// of tool results.
let failed = 0;

export function ok(desc) { console.log(`ok - ${desc}`); }
export function notOk(desc, ...diag) {
  failed++;
  console.log(`not ok - ${desc}`);
  for (const d of diag) for (const line of String(d).split('\n').slice(0, 30)) console.log(`#   ${line}`);
}
export function check(desc, cond, ...diag) { if (cond) ok(desc); else notOk(desc, ...diag); }
// Runs fn; a thrown error is a failed check of its own, not the end of the run.
export async function step(desc, fn) {
  try { await fn(); } catch (e) { notOk(`${desc} (threw)`, e?.stack ?? e); }
}
// Prints the summary line and exits 1 if any check failed.
export function finish(name) {
  console.log(`# ${name}: ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

export const show = (v) => JSON.stringify(v, null, 1)?.slice(0, 2000);
// The text content of a tool result, its structuredContent, whether it is an isError one.
export const text = (r) => (r?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
export const sc = (r) => r.structuredContent ?? {};
export const isErr = (r) => r.isError === true;
