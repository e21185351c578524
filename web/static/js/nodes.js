// Node views: the agents registered with the scheduler.
import { list } from './api.js';
import { h, frag, header, table, time, chips, mono, fmtNum, fmtBytes, num, usage } from './ui.js';

function gpus(n) {
  const all = n.gpus || [];
  if (!all.length) return h('span', { class: 'muted' }, 'none');
  const byModel = {};
  for (const g of all) byModel[g.model || 'GPU'] = (byModel[g.model || 'GPU'] || 0) + 1;
  return h('div', {}, usage(n.allocated_gpus, all.length, String, 'GPUs'),
    Object.entries(byModel).map(([m, c]) => h('div', { class: 'txt muted' }, `${c}× ${m}${all.some((g) => g.fake) ? ' (simulated)' : ''}`)));
}

export async function nodes(ctx) {
  const ns = (await list('/v1/nodes', 'nodes')).sort((a, b) => a.name.localeCompare(b.name));
  ctx.watch('node', 'job');
  return frag(
    header('Nodes', `${ns.length} registered`),
    table([
      { title: 'Name', cell: (n) => h('strong', {}, n.name) },
      { title: 'Status', cell: () => h('span', { class: 'badge ok', title: 'the agent holds its lease' }, 'ready') },
      { title: 'Address', cell: (n) => mono(n.host && !n.address.startsWith(n.host) ? `${n.address} (${n.host})` : n.address) },
      { title: 'Pool', cell: (n) => n.pool || '' },
      { title: 'CPU', cell: (n) => usage(num(n.allocated_cpu_millis) / 1000, num(n.cpu_millis) / 1000, (x) => fmtNum(x, 3), 'CPU') },
      { title: 'Memory', cell: (n) => usage(n.allocated_memory_bytes, n.memory_bytes, fmtBytes, 'memory') },
      { title: 'GPUs', cell: gpus },
      { title: 'Labels', cell: (n) => chips(n.labels) },
      { title: 'Registered', cell: (n) => time(n.register_time) },
    ], ns, { id: 'nodes', empty: 'No nodes registered.', hint: 'Start a trainer agent: `bmaas serve --target=trainer-agent`.', rowData: (n) => ({ node: n.name }) }));
}
