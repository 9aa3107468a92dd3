// The official MCP TypeScript SDK client driving `agentcell serve` at /mcp over Streamable
// HTTP: every tool, sessions in parallel, and the transport rules (405 on GET, 400 without
// a session, 404 after DELETE, 202 for notifications). Prints "ok - ..." / "not ok - ..."
// lines for tests/integration/test_mcp.sh; exits 1 if any check failed.
//
// Environment: MCP_URL (http://127.0.0.1:PORT/mcp), AGENTCELL_API_KEY (optional).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { check, finish, isErr, notOk, ok, sc, show, step, text } from './mcp_tap.mjs';

const URL_ = process.env.MCP_URL;
const KEY = process.env.AGENTCELL_API_KEY;
const auth = KEY ? { Authorization: `Bearer ${KEY}` } : {};

async function connect(name) {
  const client = new Client({ name, version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(URL_), { requestInit: { headers: auth } });
  await client.connect(transport);
  return { client, transport };
}

function post(body, headers = {}) {
  return fetch(URL_, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...auth, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

let a, b;
await step('connect', async () => {
  a = await connect('http-a');
  b = await connect('http-b');
  check('http: a session id from initialize', /^[0-9a-f]{32}$/.test(a.transport.sessionId ?? ''), a.transport.sessionId);
  check('http: each client has its own session', a.transport.sessionId !== b.transport.sessionId);
  check('http: negotiated 2025-06-18', a.transport.protocolVersion === '2025-06-18', a.transport.protocolVersion);
  check('http: serverInfo', a.client.getServerVersion()?.name === 'agentcell', show(a.client.getServerVersion()));
  const { tools } = await a.client.listTools();
  check('http: tools/list has the sixteen tools', tools.length === 16 && tools.every((t) => t.outputSchema), show(tools.map((t) => t.name)));
  await a.client.ping();
  ok('http: ping');
});

await step('tools over http', async () => {
  const c = a.client;
  const call = (name, args) => c.callTool({ name, arguments: args });
  let r = await call('sandbox_run', { command: 'echo $GREETING; pwd', env: { GREETING: 'hi' }, cwd: '/tmp' });
  check('http run: env, cwd, stdout', !isErr(r) && sc(r).stdout === 'hi\n/tmp\n', show(r));
  r = await call('sandbox_run', { command: ['sleep', '30'], timeout: 1 });
  check('http run: timeout', isErr(r) && sc(r).timed_out && sc(r).exit_code === 124, show(r));
  r = await call('sandbox_run', { command: 'echo $HTTPS_PROXY', network: true });
  check('http run: network true goes through the egress proxy', !isErr(r) && sc(r).stdout === 'http://127.0.0.1:3128\n', show(r));
  r = await call('sandbox_run', { command: ['true'], network: true, secret_bindings: ['NOPE_Z@api.example.com'] });
  check('http run: a missing secret is isError naming the set command', isErr(r) && /secret set NOPE_Z/.test(text(r)), show(r));
  r = await call('sandbox_create', { name: 'http-box', labels: { via: 'http' }, ttl: '30m', memory_mb: 128 });
  check('http create', !isErr(r) && sc(r).status === 'running' && sc(r).memory_mb === 128, show(r));
  r = await call('sandbox_exec', { name: 'http-box', command: ['id', '-u'], user: 'nobody' });
  check('http exec: user', sc(r).stdout === '65534\n', show(r));
  const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
  r = await call('sandbox_file_write', { name: 'http-box', path: '/d/b.bin', content: bytes.toString('base64'), encoding: 'base64', mode: '0700' });
  check('http file_write', !isErr(r) && sc(r).mode === '0700', show(r));
  r = await call('sandbox_file_read', { name: 'http-box', path: '/d/b.bin' });
  check('http file_read: binary round trip', sc(r).encoding === 'base64' && Buffer.from(sc(r).content, 'base64').equals(bytes), show(r));
  r = await call('sandbox_list', { label: 'via=http' });
  check('http list by label', sc(r).sandboxes?.length === 1 && sc(r).sandboxes[0].name === 'http-box', show(r));
  const before = sc(r).sandboxes?.[0]?.expires_at;
  r = await call('sandbox_extend_ttl', { name: 'http-box', by: '1h' });
  check('http extend_ttl', Date.parse(sc(r).expires_at) - Date.parse(before) > 3590 * 1000, show(r), before);
  r = await call('sandbox_stop', { name: 'http-box' });
  check('http stop', sc(r).status === 'stopped', show(r));
  r = await call('sandbox_start', { name: 'http-box' });
  check('http start', sc(r).status === 'running', show(r));
  let e;
  try { await call('sandbox_exec', { name: 'http-box' }); } catch (err) { e = err; }
  check('http: missing argument is -32602', e instanceof McpError && e.code === -32602, e);
});

await step('parallel sessions', async () => {
  // A long call in one session must not hold up another session.
  const t0 = Date.now();
  const slow = a.client.callTool({ name: 'sandbox_exec', arguments: { name: 'http-box', command: ['sleep', '2'] } });
  await new Promise((res) => setTimeout(res, 200));
  const r = await b.client.callTool({ name: 'sandbox_exec', arguments: { name: 'http-box', command: ['echo', 'fast'] } });
  const fast = Date.now() - t0;
  const s = await slow;
  check('http: a long call in one session does not block another', sc(r).stdout === 'fast\n' && fast < 1800 && !isErr(s), `fast answered after ${fast} ms`, show(r));
  const rr = await b.client.callTool({ name: 'sandbox_remove', arguments: { name: 'http-box' } });
  check('http remove', sc(rr).removed === true, show(rr));
});

await step('transport rules', async () => {
  const sid = a.transport.sessionId;
  let res = await fetch(URL_, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sid, ...auth } });
  check('http: GET is 405 with Allow (no SSE stream offered)', res.status === 405 && /POST/.test(res.headers.get('allow') ?? ''), res.status, res.headers.get('allow'));
  res = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  check('http: a request without Mcp-Session-Id is 400', res.status === 400, res.status, await res.text());
  res = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' });
  check('http: an unsupported MCP-Protocol-Version is 400', res.status === 400, res.status);
  res = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  check('http: a notification is 202 without body', res.status === 202 && (await res.text()) === '', res.status);
  res = await post('{not json', { 'mcp-session-id': sid });
  const body = await res.json().catch(() => ({}));
  check('http: a parse error is 400 with JSON-RPC -32700', res.status === 400 && body.error?.code === -32700, res.status, show(body));
  res = await post({ jsonrpc: '2.0', id: 9, method: 'ping' }, { 'mcp-session-id': sid, accept: 'text/html' });
  check('http: an Accept without application/json is 406', res.status === 406, res.status);
  res = await post({ jsonrpc: '2.0', id: 9, method: 'ping' }, { 'mcp-session-id': sid, origin: 'http://evil.example' });
  check('http: a foreign Origin is refused', res.status === 403, res.status);

  await a.transport.terminateSession();
  ok('http: DELETE ends the session (SDK terminateSession)');
  res = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-session-id': sid });
  check('http: the ended session is 404', res.status === 404, res.status);
  res = await fetch(URL_, { method: 'DELETE', headers: { 'mcp-session-id': sid, ...auth } });
  check('http: DELETE of an ended session is 404', res.status === 404, res.status);
  await b.client.ping();
  ok('http: the other session lives on');
  await b.transport.terminateSession();
  await a.client.close().catch(() => {});
  await b.client.close().catch(() => {});
});

finish('mcp_http');
