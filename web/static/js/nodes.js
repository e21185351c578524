// Node views: the agents registered with the scheduler, and each node's
// use over time (GET /v1/node-usage: a sample of every node every
// evaluator.node-usage-interval) as charts of CPU and memory allocated
// against capacity and of each GPU's utilisation and memory.
import { list, settle, enc } from './api.js';
import { h, frag, header, table, time, chips, mono, fmtNum, fmtBytes, num, usage, link, empty, errorBox } from './ui.js';
import { LineChart, chartGrid, chartId } from './charts.js';
import { RANGES, rangeMinutes } from './monitor.js';

function gpus(n) {
  const all = n.gpus || [];
  if (!all.length) return h('span', { class: 'muted' }, 'none');
  const byModel = {};
  for (const g of all) byModel[g.model || 'GPU'] = (byModel[g.model || 'GPU'] || 0) + 1;
  return h('div', {}, usage(n.allocated_gpus, all.length, String, 'GPUs'),
    Object.entries(byModel).map(([m, c]) => h('div', { class: 'txt muted' }, `${c}× ${m}${all.some((g) => g.fake) ? ' (simulated)' : ''}`)));
}

// MAX_NODE_CHARTS bounds the nodes charted on one page (by name); the
// rest are a click away (#/nodes?node=NAME).
const MAX_NODE_CHARTS = 12;
// MAX_SAMPLES bounds the samples read per node (24 h at the default
// 30 s interval).
const MAX_SAMPLES = 3000;
const GIB = 2 ** 30;
const secs = (ts) => Date.parse(ts) / 1000;

// usageOf reads one node's samples since minutes ago, oldest first.
export async function usageOf(node, minutes) {
  const since = new Date(Date.now() - minutes * 60000).toISOString();
  const ss = await list(`/v1/node-usage?node=${enc(node)}&since=${enc(since)}`, 'samples', MAX_SAMPLES);
  return ss.sort((a, b) => secs(a.time) - secs(b.time));
}

// usageSeries turns one node's samples into each chart's series (x = the
// sample's time in seconds; CPUs, GiB, percent): what the page draws and
// the tests compare with the API.
export function usageSeries(samples) {
  const pts = (f, from = samples) => from.map((s) => [secs(s.time), f(s)]);
  const indexes = [...new Set(samples.flatMap((s) => (s.gpus || []).map((g) => num(g.index))))].sort((a, b) => a - b);
  const gpu = (i, f) => {
    const has = samples.filter((s) => (s.gpus || []).some((g) => num(g.index) === i));
    return pts((s) => f(s.gpus.find((g) => num(g.index) === i)), has);
  };
  return {
    cpu: [
      { label: 'allocated', style: 'step', points: pts((s) => num(s.allocated_cpu_millis) / 1000) },
      { label: 'capacity', style: 'step', dash: true, colour: '#667085', points: pts((s) => num(s.cpu_millis) / 1000) },
    ],
    memory: [
      { label: 'allocated', style: 'step', points: pts((s) => num(s.allocated_memory_bytes) / GIB) },
      { label: 'capacity', style: 'step', dash: true, colour: '#667085', points: pts((s) => num(s.memory_bytes) / GIB) },
    ],
    'gpu-util': indexes.map((i) => ({ label: `GPU ${i}`, points: gpu(i, (g) => num(g.utilization_percent)) })),
    'gpu-memory': indexes.flatMap((i) => [
      { label: `GPU ${i} used`, points: gpu(i, (g) => num(g.used_memory_bytes) / GIB) },
      { label: `GPU ${i} allocated`, style: 'step', dash: true, points: gpu(i, (g) => num(g.allocated_memory_bytes) / GIB) },
    ]),
  };
}

// CHARTS are a node's charts: DOM id suffix, title, y axis; the GPU ones
// only for a node that has GPUs.
const CHARTS = [
  ['cpu', 'CPU', 'CPUs', false],
  ['memory', 'Memory', 'GiB', false],
  ['gpu-util', 'GPU utilisation', 'percent', true],
  ['gpu-memory', 'GPU memory', 'GiB', true],
];

// Charts of the nodes page on screen, kept across its redraws so that
// they update in place (and keep the user's zoom).
const kept = new Map();

function chartOf(node, key, title, y) {
  const id = chartId(`node-${node}-${key}`);
  let c = kept.get(id);
  if (!c) {
    c = new LineChart({ id, title, x: 'time', y });
    kept.set(id, c);
  }
  return c;
}

// nodeCharts draws one node's charts from its samples.
function nodeCharts(n, samples) {
  const series = usageSeries(samples);
  const hasGpus = (n.gpus || []).length > 0 || series['gpu-util'].length > 0;
  return chartGrid(...CHARTS.filter(([, , , g]) => !g || hasGpus)
    .map(([key, title, y]) => chartOf(n.name, key, title, y).set(series[key]).el));
}

// refreshMs follows the samples' own spacing (the recording interval),
// within 2 s and 30 s, so a page shows each sample soon after it lands.
export function refreshMs(samples) {
  const gaps = [];
  for (let i = 1; i < samples.length; i++) gaps.push((secs(samples[i].time) - secs(samples[i - 1].time)) * 1000);
  if (!gaps.length) return 5000;
  gaps.sort((a, b) => a - b);
  return Math.min(30000, Math.max(2000, gaps[Math.floor(gaps.length / 2)]));
}

function rangeLinks(range, node) {
  const q = (k) => `#/nodes?range=${k}${node ? `&node=${enc(node)}` : ''}`;
  return h('span', { class: 'toolbar ranges' }, RANGES.map(([k]) => (k === range
    ? h('span', { class: 'chip active' }, k)
    : link(q(k), k, { class: 'chip', id: `range-${k}` }))));
}

export async function nodes(ctx) {
  const range = RANGES.some(([k]) => k === ctx.query.get('range')) ? ctx.query.get('range') : '1h';
  const only = ctx.query.get('node') || '';
  const ns = (await list('/v1/nodes', 'nodes')).sort((a, b) => a.name.localeCompare(b.name));
  ctx.watch('node', 'job');
  const charted = (only ? ns.filter((n) => n.name === only) : ns).slice(0, MAX_NODE_CHARTS);
  const usages = await settle(charted.map((n) => usageOf(n.name, rangeMinutes(range))));
  // Samples land without an event: draw again at their pace.
  ctx.refresh(Math.min(...usages.map((u) => (u.ok ? refreshMs(u.value) : 30000)), 30000));
  return frag(
    header('Nodes', `${ns.length} registered`),
    table([
      { title: 'Name', cell: (n) => link(`#/nodes?range=${range}&node=${enc(n.name)}`, h('strong', {}, n.name)) },
      { title: 'Status', cell: () => h('span', { class: 'badge ok', title: 'the agent holds its lease' }, 'ready') },
      { title: 'Address', cell: (n) => mono(n.host && !n.address.startsWith(n.host) ? `${n.address} (${n.host})` : n.address) },
      { title: 'Pool', cell: (n) => n.pool || '' },
      { title: 'CPU', cell: (n) => usage(num(n.allocated_cpu_millis) / 1000, num(n.cpu_millis) / 1000, (x) => fmtNum(x, 3), 'CPU') },
      { title: 'Memory', cell: (n) => usage(n.allocated_memory_bytes, n.memory_bytes, fmtBytes, 'memory') },
      { title: 'GPUs', cell: gpus },
      { title: 'Labels', cell: (n) => chips(n.labels) },
      { title: 'Registered', cell: (n) => time(n.register_time) },
    ], ns, { id: 'nodes', empty: 'No nodes registered.', hint: 'Start a trainer agent: `bmaas serve --target=trainer-agent`.', rowData: (n) => ({ node: n.name }) }),
    h('section', { id: 'node-usage' },
      h('div', { class: 'head' }, h('h2', {}, 'Use over time'), rangeLinks(range, only),
        only ? link(`#/nodes?range=${range}`, 'all nodes', { class: 'chip' }) : null),
      charted.length ? null : empty(only ? `No node named ${only}.` : 'No nodes to chart.'),
      charted.map((n, i) => h('div', { class: 'node-usage', dataset: { node: n.name, samples: String(usages[i].ok ? usages[i].value.length : 0) } },
        h('h3', {}, n.name, usages[i].ok ? h('span', { class: 'muted' }, ` · ${usages[i].value.length} samples`) : null),
        usages[i].ok
          ? (usages[i].value.length ? nodeCharts(n, usages[i].value) : empty('No samples in this range yet.', 'The evaluator records one every evaluator.node-usage-interval.'))
          : errorBox(usages[i].error, 'Node use'))),
      ns.length > charted.length && !only ? h('p', { class: 'muted' }, `The first ${charted.length} of ${ns.length} nodes; pick one by its name.`) : null));
}
