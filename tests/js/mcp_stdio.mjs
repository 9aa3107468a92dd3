// The official MCP TypeScript SDK client driving `agentcell mcp` over stdio through every
// tool and every field. Prints one "ok - ..." / "not ok - ..." line per check (diagnostics
// as "#   " lines) for tests/integration/test_mcp.sh; exits 1 if any check failed.
//
// Environment: AGENTCELL (the binary), AGENTCELL_HOME (a fresh state directory; run as root).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { check, finish, isErr, notOk, ok, sc, show, step, text } from './mcp_tap.mjs';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const BIN = process.env.AGENTCELL;
const HOME = process.env.AGENTCELL_HOME;
if (!BIN || !HOME) {
  console.log('not ok - AGENTCELL and AGENTCELL_HOME must be set');
  process.exit(1);
}
const VERSION = execFileSync(BIN, ['--version']).toString().trim().split(' ').pop();
const serverEnv = { AGENTCELL_HOME: HOME, ANTHROPIC_API_KEY: 'sk-test-mcp-key' };

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

function transport(extraEnv = {}) {
  return new StdioClientTransport({
    command: BIN, args: ['mcp'], env: { ...serverEnv, ...extraEnv }, stderr: 'pipe',
  });
}

const client = new Client({ name: 'agentcell-test', version: '1.0.0' });
const tr = transport();
let stderrText = '';
tr.stderr?.on('data', (d) => { stderrText += d.toString(); });

async function call(name, args) { return client.callTool({ name, arguments: args }); }
// Expects a JSON-RPC error (McpError) with this code.
async function callErr(name, args) {
  try {
    const r = await call(name, args);
    return { result: r };
  } catch (e) {
    return { code: e instanceof McpError ? e.code : undefined, message: e.message };
  }
}

// Host cgroup leaves (v1 hierarchies or the unified one) whose names end with suffix.
function cgroupFile(leafTest, files) {
  for (const dir of ['/sys/fs/cgroup/cpu,cpuacct/agentcell', '/sys/fs/cgroup/cpu/agentcell',
    '/sys/fs/cgroup/memory/agentcell', '/sys/fs/cgroup/unified/agentcell', '/sys/fs/cgroup/agentcell']) {
    let leaves = [];
    try { leaves = fs.readdirSync(dir); } catch { continue; }
    for (const leaf of leaves.filter(leafTest)) {
      for (const f of files) {
        try { return fs.readFileSync(`${dir}/${leaf}/${f}`, 'utf8').trim(); } catch { /* next */ }
      }
    }
  }
  return undefined;
}
const cpuQuota = (t) => cgroupFile(t, ['cpu.cfs_quota_us', 'cpu.max']);
const memLimit = (t) => cgroupFile(t, ['memory.limit_in_bytes', 'memory.max']);

await step('connect', async () => {
  await client.connect(tr);
  const info = client.getServerVersion();
  check('initialize: serverInfo names agentcell and its version', info?.name === 'agentcell' && info?.version === VERSION, show(info), VERSION);
  check('initialize: tools capability without listChanged', client.getServerCapabilities()?.tools?.listChanged === false, show(client.getServerCapabilities()));
  check('initialize: instructions', (client.getInstructions() ?? '').includes('sandbox_run'));
  await client.ping();
  ok('ping');
});

const TOOLS = ['sandbox_run', 'sandbox_create', 'sandbox_exec', 'sandbox_list', 'sandbox_start', 'sandbox_stop',
  'sandbox_remove', 'sandbox_file_read', 'sandbox_file_write', 'sandbox_extend_ttl', 'sandbox_write_files',
  'sandbox_exec_detach', 'sandbox_exec_status', 'sandbox_exec_logs', 'sandbox_exec_kill', 'sandbox_exec_list'];
await step('tools/list', async () => {
  const { tools } = await client.listTools();
  check('tools/list: the sixteen tools', JSON.stringify(tools.map((t) => t.name)) === JSON.stringify(TOOLS), show(tools.map((t) => t.name)));
  const bad = tools.filter((t) => t.inputSchema?.type !== 'object' || t.inputSchema.additionalProperties !== false ||
    !t.outputSchema || t.outputSchema.type !== 'object' || !t.title || !t.description || !t.annotations);
  check('tools/list: closed input schemas, output schemas, titles, annotations', bad.length === 0, show(bad));
  const run = tools.find((t) => t.name === 'sandbox_run');
  const fields = Object.keys(run.inputSchema.properties).sort().join(',');
  check('tools/list: sandbox_run fields', fields === 'allow_hosts,allowlist_only,backend,block_hosts,code,command,compatibility_mode,cpus,cwd,disk_mb,env,fast,image,language,memory_mb,network,ports,profile,publish,secret_bindings,template,timeout,timeout_ms,volumes', fields);
  // command, or language and code: the tool checks that exactly one is given.
  check('tools/list: sandbox_run requires no single field (command or language+code)', run.inputSchema.required === undefined, JSON.stringify(run.inputSchema.required));
});

// ---------------------------------------------------------------- sandbox_run
await step('sandbox_run', async () => {
  let r = await call('sandbox_run', { language: 'sh', code: 'echo "$((6*7))" "$0"' });
  check('run: language and code (sh -c, the code one argument)', !isErr(r) && sc(r).exit_code === 0 && sc(r).stdout === '42 sh\n', show(r));
  r = await call('sandbox_run', { command: ['echo', 'hello', 'world'] });
  check('run: argv command, stdout, exit 0', !isErr(r) && sc(r).exit_code === 0 && sc(r).stdout === 'hello world\n' && sc(r).stderr === '' && sc(r).timed_out === false, show(r));
  check('run: text shows exit code and both streams', /exit_code: 0/.test(text(r)) && /--- stdout ---\nhello world/.test(text(r)) && /--- stderr ---/.test(text(r)), text(r));

  r = await call('sandbox_run', { command: 'echo out; echo err >&2; exit 3' });
  check('run: string command via sh -c, streams separate, exit 3 is isError', isErr(r) && sc(r).exit_code === 3 && sc(r).stdout === 'out\n' && sc(r).stderr === 'err\n', show(r));

  let t0 = Date.now();
  r = await call('sandbox_run', { command: ['sleep', '30'], timeout: 1 });
  let dt = Date.now() - t0;
  check('run: timeout kills sleep (timed_out, 124, isError, < 10 s)', isErr(r) && sc(r).timed_out === true && sc(r).exit_code === 124 && dt < 10000, show(r), `${dt} ms`);

  t0 = Date.now();
  r = await call('sandbox_run', { command: 'sleep 0.3; echo done', timeout: 20 });
  check('run: a timeout that is not reached changes nothing', !isErr(r) && sc(r).stdout === 'done\n' && Date.now() - t0 < 15000, show(r));

  r = await call('sandbox_run', { command: 'printf "%s|%s" "$FOO" "$BAR"', env: { FOO: 'f o o', BAR: 'b=r' } });
  check('run: env object reaches the command', sc(r).stdout === 'f o o|b=r', show(r));
  r = await call('sandbox_run', { command: ['printenv', 'ONE', 'TWO'], env: ['ONE=1', 'TWO=2=2'] });
  check('run: env array of K=V reaches the command', sc(r).stdout === '1\n2=2\n', show(r));

  r = await call('sandbox_run', { command: ['pwd'], cwd: '/usr/share' });
  check('run: cwd is honoured', sc(r).stdout === '/usr/share\n', show(r));
  r = await call('sandbox_run', { command: ['pwd'], cwd: '/no/such/dir' });
  check('run: a missing cwd is an isError result', isErr(r), show(r));

  r = await call('sandbox_run', { command: 'echo $HTTP_PROXY; grep -c : /proc/net/dev', network: true });
  check('run: network true goes through the egress proxy (HTTP_PROXY, still only lo)', !isErr(r) && sc(r).stdout === 'http://127.0.0.1:3128\n1\n', show(r));
  r = await call('sandbox_run', { command: ['true'], network: true, allow_hosts: ['bad host'] });
  check('run: a malformed host pattern is a clear isError', isErr(r) && /invalid host pattern 'bad host'/.test(text(r)), show(r));
  r = await call('sandbox_run', { command: 'grep -c : /proc/net/dev; grep -o "^ *lo:" /proc/net/dev', network: false });
  check('run: network false runs with loopback only', !isErr(r) && sc(r).stdout.replace(/ /g, '') === '1\nlo:\n', show(r));

  r = await call('sandbox_run', { command: ['/usr/bin/python3', '-c', 'b = bytearray(200 * 1024 * 1024); print(len(b))'], memory_mb: 64 });
  check('run: memory_mb 64 stops a 200 MB allocation', isErr(r) && sc(r).exit_code !== 0, show(r));
  r = await call('sandbox_run', { command: ['/usr/bin/python3', '-c', 'b = bytearray(200 * 1024 * 1024); print(len(b))'], memory_mb: 512 });
  check('run: memory_mb 512 allows it', !isErr(r) && sc(r).stdout === '209715200\n', show(r));

  // cpus and memory_mb as the host sees them, while the command runs
  const pid = tr.pid;
  const running = call('sandbox_run', { command: ['sleep', '2'], cpus: 0.25, memory_mb: 96 });
  let quota, mem;
  for (let i = 0; i < 60 && (quota === undefined || mem === undefined); i++) {
    await sleep(50);
    const mine = (leaf) => leaf.startsWith(`run-${pid}-`);
    quota = cpuQuota(mine);
    mem = memLimit(mine);
  }
  r = await running;
  check('run: cpus 0.25 sets the CPU quota', quota !== undefined && (quota === '25000' || quota.startsWith('25000 ')), `quota: ${quota}`, show(r));
  check('run: memory_mb 96 sets the memory limit', mem === String(96 * 1024 * 1024), `limit: ${mem}`);

  r = await call('sandbox_run', { command: 'touch /probe && echo wrote', profile: 'restrictive' });
  check('run: profile restrictive gives a read-only root', isErr(r) && sc(r).stdout === '', show(r));
  r = await call('sandbox_run', { command: 'touch /probe && echo wrote', profile: 'moderate' });
  check('run: profile moderate gives a writable root', !isErr(r) && sc(r).stdout === 'wrote\n', show(r));

  r = await call('sandbox_run', { command: ['true'], image: 'host' });
  check('run: image host', !isErr(r), show(r));
  r = await call('sandbox_run', { command: ['true'], image: '/no/such/image' });
  check('run: a missing image directory is an isError result', isErr(r) && /does not exist/.test(text(r)), show(r));

  r = await call('sandbox_run', { command: ['echo', 'native'], backend: 'native' });
  check('run: backend native', !isErr(r) && sc(r).stdout === 'native\n', show(r));
  r = await call('sandbox_run', { command: ['echo', 'engine'], backend: 'docker', image: 'docker.io/library/alpine:3' });
  check('run: backend docker reaches the docker backend (its clear error without an engine, or the output)',
    isErr(r) ? /engine|docker/i.test(text(r)) : sc(r).stdout === 'engine\n', show(r));

  r = await call('sandbox_run', { command: ['no-such-command-xyz'] });
  check('run: command not found is isError with exit 127', isErr(r) && (sc(r).exit_code === 127 || /not found|No such/i.test(text(r))), show(r));

  r = await call('sandbox_run', { command: 'head -c 3000000 /dev/zero | tr "\\0" a; printf "\\377\\n" >&2' });
  check('run: big output is cut at 1 MiB and says how much was dropped', sc(r).stdout.length === 1048576 && sc(r).stdout_truncated_bytes === 3000000 - 1048576 && /more bytes not shown/.test(text(r)), show({ ...sc(r), stdout: sc(r).stdout?.length }));
  check('run: non-UTF-8 output becomes U+FFFD', sc(r).stderr === '\ufffd\n', JSON.stringify(sc(r).stderr));
});

// ---------------------------------------------------------------- argument errors
await step('invalid params', async () => {
  const cases = [
    ['unknown tool', 'no_such_tool', {}],
    ['missing required field', 'sandbox_exec', { name: 'x' }],
    ['unknown field', 'sandbox_run', { command: ['true'], bogus: 1 }],
    ['wrong type', 'sandbox_run', { command: ['true'], timeout: 'soon' }],
    ['empty argv', 'sandbox_run', { command: [] }],
    ['bad env entry', 'sandbox_run', { command: ['true'], env: ['NOEQUALS'] }],
    ['relative cwd', 'sandbox_run', { command: ['true'], cwd: 'tmp' }],
    ['memory below the minimum', 'sandbox_run', { command: ['true'], memory_mb: 1 }],
    ['unknown backend', 'sandbox_create', { name: 'x', backend: 'vmware' }],
    ['bad duration', 'sandbox_extend_ttl', { name: 'x', by: 'later' }],
    ['bad base64', 'sandbox_file_write', { name: 'x', path: '/a', content: '!!', encoding: 'base64' }],
    ['bad mode', 'sandbox_file_write', { name: 'x', path: '/a', content: '', mode: '8' }],
  ];
  for (const [desc, tool, args] of cases) {
    const e = await callErr(tool, args);
    check(`invalid params: ${desc} is JSON-RPC -32602`, e.code === -32602, show(e));
  }
});

// ---------------------------------------------------------------- persistent sandboxes
let createdExpiry;
await step('sandbox_create', async () => {
  let r = await call('sandbox_create', {
    name: 'mcp-box', labels: { team: 'mcp', tier: 'one' }, ttl: '1h', description: 'made over MCP',
    init_script: 'echo from-init > /init.txt', memory_mb: 128, cpus: 0.5, profile: 'moderate',
    agent: 'claude', image: 'host', network: false,
  });
  const s = sc(r);
  check('create: running sandbox with its settings', !isErr(r) && s.name === 'mcp-box' && s.status === 'running' &&
    s.memory_mb === 128 && s.cpus === 0.5 && s.labels?.team === 'mcp' && s.labels?.tier === 'one' &&
    s.description === 'made over MCP' && s.agent === 'claude' && typeof s.expires_at === 'string' && s.ttl_seconds === 3600, show(r));
  createdExpiry = s.expires_at;
  check('create: cpus 0.5 and memory_mb 128 reach the cgroup',
    ['50000', '50000 100000'].includes(cpuQuota((l) => l.endsWith('-mcp-box'))) && memLimit((l) => l.endsWith('-mcp-box')) === String(128 * 1024 * 1024),
    `quota ${cpuQuota((l) => l.endsWith('-mcp-box'))} mem ${memLimit((l) => l.endsWith('-mcp-box'))}`);

  r = await call('sandbox_exec', { name: 'mcp-box', command: ['cat', '/init.txt'] });
  check('create: init_script ran at start', sc(r).stdout === 'from-init\n', show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['printenv', 'ANTHROPIC_API_KEY'] });
  check('create: agent claude passes ANTHROPIC_API_KEY', sc(r).stdout === 'sk-test-mcp-key\n', show(r));

  r = await call('sandbox_create', { name: 'mcp-idle', start: false, profile: 'restrictive' });
  check('create: start false leaves it stopped', !isErr(r) && sc(r).status === 'stopped' && sc(r).profile === 'restrictive', show(r));
  r = await call('sandbox_create', { name: 'mcp-box' });
  check('create: an existing name is an isError result', isErr(r) && /exists/.test(text(r)), show(r));
  r = await call('sandbox_create', { name: 'mcp-bad', init_script: 'echo broken >&2; exit 7' });
  check('create: a failing init script is isError with its output', isErr(r) && /broken|7/.test(text(r)), show(r));
  r = await call('sandbox_create', { name: 'mcp-net', network: true, block_hosts: ['*.'] });
  check('create: a malformed host pattern is refused with a clear isError', isErr(r) && /invalid host pattern/.test(text(r)), show(r));
  r = await call('sandbox_create', { name: 'bad name!' });
  check('create: an invalid name is an isError result', isErr(r) && /invalid sandbox name/.test(text(r)), show(r));
  r = await call('sandbox_create', { name: 'mcp-lbl', labels: { 'bad key!': 'v' }, start: false });
  check('create: an invalid label is an isError result', isErr(r) && /label/i.test(text(r)), show(r));
  r = await call('sandbox_create', { name: 'mcp-agent', agent: 'codex', start: false, ttl: 120, description: '' });
  check('create: ttl as seconds, agent codex', !isErr(r) && sc(r).ttl_seconds === 120 && sc(r).agent === 'codex', show(r));
  r = await call('sandbox_list', {});
  const names = (sc(r).sandboxes ?? []).map((s) => s.name).sort().join(',');
  check('create: refused creations leave nothing behind', names === 'mcp-agent,mcp-box,mcp-idle', names);
});

await step('sandbox_exec', async () => {
  let r = await call('sandbox_exec', { name: 'mcp-box', command: 'echo $X-$Y; pwd', env: { X: 'x1' }, cwd: '/tmp' });
  check('exec: env object and cwd', sc(r).stdout === 'x1-\n/tmp\n', show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['sh', '-c', 'echo $Y'], env: ['Y=y2'] });
  check('exec: env array', sc(r).stdout === 'y2\n', show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['id', '-u'], user: 'nobody' });
  check('exec: user nobody', sc(r).stdout === '65534\n', show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['id', '-u'], user: '1234' });
  check('exec: user by uid', sc(r).stdout === '1234\n', show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['id', '-u'] });
  check('exec: default user is root of the sandbox', sc(r).stdout === '0\n', show(r));
  const t0 = Date.now();
  r = await call('sandbox_exec', { name: 'mcp-box', command: 'sleep 30 & sleep 30', timeout: 1 });
  check('exec: timeout kills sleep and its children', isErr(r) && sc(r).timed_out && sc(r).exit_code === 124 && Date.now() - t0 < 10000, show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['sh', '-c', 'pgrep -c sleep || true'] });
  check('exec: nothing of the timed-out command survives', sc(r).stdout.trim() === '0', show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: 'exit 42' });
  check('exec: non-zero exit is isError with the code', isErr(r) && sc(r).exit_code === 42, show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['definitely-not-here'] });
  check('exec: command not found is isError', isErr(r) && (sc(r).exit_code === 127 || /not found|No such/i.test(text(r))), show(r));
  r = await call('sandbox_exec', { name: 'mcp-idle', command: ['true'] });
  check('exec: a stopped sandbox is an isError result', isErr(r) && /not running/.test(text(r)), show(r));
  r = await call('sandbox_exec', { name: 'mcp-ghost', command: ['true'] });
  check('exec: an unknown sandbox is an isError result', isErr(r) && /mcp-ghost/.test(text(r)), show(r));
});

await step('sandbox_list', async () => {
  let r = await call('sandbox_list', { label: 'team=mcp' });
  let names = (sc(r).sandboxes ?? []).map((s) => s.name).join(',');
  check('list: by one label', !isErr(r) && names === 'mcp-box', show(r));
  r = await call('sandbox_list', { label: ['team=mcp', 'tier=one'] });
  names = (sc(r).sandboxes ?? []).map((s) => s.name).join(',');
  check('list: by several labels (all must match)', names === 'mcp-box', show(r));
  r = await call('sandbox_list', { label: ['team=mcp', 'tier=two'] });
  check('list: no match is an empty list', !isErr(r) && sc(r).sandboxes?.length === 0, show(r));
  r = await call('sandbox_list', {});
  const box = (sc(r).sandboxes ?? []).find((s) => s.name === 'mcp-box');
  check('list: all, with status', sc(r).sandboxes?.length === 3 && box?.status === 'running' && /mcp-box\trunning/.test(text(r)), show(r));
  r = await call('sandbox_list', { label: 'not a label' });
  check('list: a malformed label is an isError result', isErr(r), show(r));
});

await step('files', async () => {
  let r = await call('sandbox_file_write', { name: 'mcp-box', path: '/work/notes/hello.txt', content: 'héllo\nwörld\n' });
  check('file_write: utf8 text, parents created', !isErr(r) && sc(r).size === 14 && sc(r).mode === '0644', show(r));
  r = await call('sandbox_file_read', { name: 'mcp-box', path: '/work/notes/hello.txt' });
  check('file_read: utf8 round trip', !isErr(r) && sc(r).encoding === 'utf8' && sc(r).content === 'héllo\nwörld\n' && sc(r).size === 14 && text(r) === 'héllo\nwörld\n', show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['cat', '/work/notes/hello.txt'] });
  check('file_write: the sandbox sees the file', sc(r).stdout === 'héllo\nwörld\n', show(r));

  const bytes = Buffer.alloc(256 * 4);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 255;
  r = await call('sandbox_file_write', { name: 'mcp-box', path: '/bin.dat', content: bytes.toString('base64'), encoding: 'base64', mode: '0755' });
  check('file_write: base64 bytes with mode 0755', !isErr(r) && sc(r).size === 1024 && sc(r).mode === '0755', show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['stat', '-c', '%a %s', '/bin.dat'] });
  check('file_write: mode and size in the sandbox', sc(r).stdout === '755 1024\n', show(r));
  r = await call('sandbox_file_read', { name: 'mcp-box', path: '/bin.dat' });
  check('file_read: binary comes back base64, byte for byte', sc(r).encoding === 'base64' && Buffer.from(sc(r).content, 'base64').equals(bytes) && sc(r).size === 1024, show({ ...sc(r), content: sc(r).content?.slice(0, 40) }));

  r = await call('sandbox_file_write', { name: 'mcp-box', path: '/int-mode', content: 'x', mode: 384 });
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['stat', '-c', '%a', '/int-mode'] });
  check('file_write: integer mode (384 = 0600)', sc(r).stdout === '600\n', show(r));
  r = await call('sandbox_file_write', { name: 'mcp-box', path: '/suid', content: 'x', mode: '4755' });
  check('file_write: setuid is dropped', !isErr(r) && sc(r).mode === '0755', show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: 'printf "\\377\\000a" > /nonutf; printf "" > /empty' });
  r = await call('sandbox_file_read', { name: 'mcp-box', path: '/nonutf' });
  check('file_read: a file the sandbox wrote, not UTF-8, is base64', sc(r).encoding === 'base64' && Buffer.from(sc(r).content, 'base64').equals(Buffer.from([255, 0, 97])), show(r));
  r = await call('sandbox_file_read', { name: 'mcp-box', path: '/empty' });
  check('file_read: an empty file', !isErr(r) && sc(r).content === '' && sc(r).size === 0, show(r));
  r = await call('sandbox_file_read', { name: 'mcp-box', path: '/missing' });
  check('file_read: a missing file is an isError result', isErr(r), show(r));
  r = await call('sandbox_file_read', { name: 'mcp-box', path: '/work' });
  check('file_read: a directory is an isError result', isErr(r), show(r));
  r = await call('sandbox_file_read', { name: 'mcp-box', path: '/../../../etc/shadow' });
  check('file_read: paths stay inside the sandbox', isErr(r) || !/root:/.test(sc(r).content ?? ''), show(r));

  r = await call('sandbox_file_write', { name: 'mcp-agent', path: '/stopped.txt', content: 'while stopped' });
  check('file_write: into a stopped sandbox', !isErr(r), show(r));
  r = await call('sandbox_file_read', { name: 'mcp-agent', path: '/stopped.txt' });
  check('file_read: from a stopped sandbox', sc(r).content === 'while stopped', show(r));
  r = await call('sandbox_file_write', { name: 'mcp-idle', path: '/ro.txt', content: 'x' });
  check('file_write: a read-only (restrictive) sandbox refuses, as isError', isErr(r) && /Read-only/.test(text(r)), show(r));
});

await step('sandbox_extend_ttl', async () => {
  let r = await call('sandbox_extend_ttl', { name: 'mcp-box', by: '2h' });
  const exp = sc(r).expires_at;
  check('extend_ttl: expires_at moves 2 h later', !isErr(r) && typeof exp === 'string' &&
    Math.abs(Date.parse(exp) - Date.parse(createdExpiry) - 2 * 3600 * 1000) < 5000, show(r), createdExpiry);
  r = await call('sandbox_list', { label: 'team=mcp' });
  check('extend_ttl: list shows the new expiry', sc(r).sandboxes?.[0]?.expires_at === exp, show(r));
  r = await call('sandbox_extend_ttl', { name: 'mcp-idle', by: 60 });
  check('extend_ttl: a sandbox without TTL gets one (by in seconds)', !isErr(r) && Math.abs(Date.parse(sc(r).expires_at) - Date.now() - 60000) < 10000, show(r));
  r = await call('sandbox_extend_ttl', { name: 'mcp-ghost', by: '1h' });
  check('extend_ttl: an unknown sandbox is an isError result', isErr(r), show(r));
});

await step('start/stop/remove', async () => {
  let r = await call('sandbox_stop', { name: 'mcp-box' });
  check('stop: stopped', !isErr(r) && sc(r).status === 'stopped', show(r));
  r = await call('sandbox_stop', { name: 'mcp-box' });
  check('stop: again says it was not running', !isErr(r) && /not running/.test(text(r)), show(r));
  r = await call('sandbox_start', { name: 'mcp-box' });
  check('start: running again', !isErr(r) && sc(r).status === 'running', show(r));
  r = await call('sandbox_start', { name: 'mcp-box' });
  check('start: again says it was already running', !isErr(r) && /already running/.test(text(r)), show(r));
  r = await call('sandbox_exec', { name: 'mcp-box', command: ['cat', '/work/notes/hello.txt'] });
  check('start: files persisted across stop and start', sc(r).stdout === 'héllo\nwörld\n', show(r));
  r = await call('sandbox_start', { name: 'mcp-ghost' });
  check('start: an unknown sandbox is an isError result', isErr(r), show(r));
  for (const n of ['mcp-box', 'mcp-idle', 'mcp-agent']) {
    r = await call('sandbox_remove', { name: n });
    check(`remove: ${n}`, !isErr(r) && sc(r).removed === true && sc(r).name === n, show(r));
  }
  r = await call('sandbox_remove', { name: 'mcp-box' });
  check('remove: again is an isError result', isErr(r), show(r));
  r = await call('sandbox_list', {});
  check('remove: nothing is left', sc(r).sandboxes?.length === 0 && /no sandboxes/.test(text(r)), show(r));
  await client.ping();
  ok('the server still answers after all tools');
});

const serverPid = tr.pid;
await client.close().catch(() => {});
{
  const left = [];
  for (const c of ['cpu', 'cpu,cpuacct', 'memory', 'pids', 'unified']) {
    try { left.push(...fs.readdirSync(`/sys/fs/cgroup/${c}/agentcell`).filter((l) => l.startsWith(`run-${serverPid}-`))); } catch { /* absent */ }
  }
  check('no cgroup of the server runs is left', serverPid > 0 && left.length === 0, left.join(' '));
}
check('nothing but MCP messages on stdout (the SDK parsed every line)', !/SyntaxError|Unexpected token/.test(stderrText), stderrText);

// ---------------------------------------------------------------- version negotiation
// The raw SDK transport (no Client): initialize with each version, then look at what the
// server offers for it.
async function rawSession(version) {
  const t = transport();
  const pending = new Map();
  t.onmessage = (m) => { if (m.id !== undefined && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); } };
  await t.start();
  let next = 1;
  const request = (method, params) => new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, resolve);
    setTimeout(() => reject(new Error(`timeout waiting for ${method}`)), 20000);
    t.send({ jsonrpc: '2.0', id, method, params });
  });
  const init = await request('initialize', { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '0' } });
  await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return { t, request, init };
}

const expectations = [
  ['2024-11-05', '2024-11-05', false, false],
  ['2025-03-26', '2025-03-26', true, false],
  ['2025-06-18', '2025-06-18', true, true],
  ['2025-11-25', '2025-06-18', true, true],
  ['1999-01-01', '2025-06-18', true, true],
];
for (const [asked, got, annotations, structured] of expectations) {
  await step(`negotiate ${asked}`, async () => {
    const { t, request, init } = await rawSession(asked);
    check(`negotiate: ${asked} -> ${got}`, init.result?.protocolVersion === got, show(init));
    const list = await request('tools/list', {});
    const run = list.result?.tools?.[0];
    check(`negotiate ${asked}: annotations ${annotations ? 'offered' : 'absent'}, outputSchema ${structured ? 'offered' : 'absent'}`,
      !!run?.annotations === annotations && !!run?.outputSchema === structured && !!run?.title === structured, show(run));
    const res = await request('tools/call', { name: 'sandbox_list', arguments: {} });
    check(`negotiate ${asked}: structuredContent ${structured ? 'present' : 'absent'}`,
      !!res.result?.structuredContent === structured && Array.isArray(res.result?.content), show(res));
    await t.close();
  });
}

await step('protocol errors', async () => {
  const { t, request } = await rawSession('2025-06-18');
  let r = await request('no/such/method', {});
  check('protocol: unknown method is -32601', r.error?.code === -32601, show(r));
  r = await request('tools/list', { cursor: 'bogus' });
  check('protocol: an unknown cursor is -32602', r.error?.code === -32602, show(r));
  r = await request('tools/call', { name: 'sandbox_list', arguments: 'x' });
  check('protocol: arguments not an object is -32602', r.error?.code === -32602, show(r));
  r = await request('initialize', {});
  check('protocol: initialize without protocolVersion is -32602', r.error?.code === -32602, show(r));
  r = await request('ping');
  check('protocol: ping without params', r.result && Object.keys(r.result).length === 0, show(r));
  await t.close();
});

finish('mcp_stdio');
