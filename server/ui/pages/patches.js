// Patches: the cache — what each pair's patch saves against the full model, build times, hits and
// bytes served; builds queued and running; failures; what eviction removed.
import { api } from '../api.js';
import { barChart } from '../charts.js';
import { ago, bytes, h, percent, section, table } from '../dom.js';

export async function patchesPage() {
  const [manifest, builds] = await Promise.all([api('/manifest'), api('/admin/builds')]);
  const sizes = new Map();
  for (const [name, m] of Object.entries(manifest.models || {}))
    for (const v of m.versions || []) sizes.set(`${name}/${v.version}`, v.file_size);
  const patches = (manifest.patches || []).map((p) => {
    const full = sizes.get(`${p.model}/${p.target_version}`) || 0;
    return { ...p, full, saved: Math.max(0, full - p.patch_size), savedServed: Math.max(0, full - p.patch_size) * (p.hits || 0) };
  }).sort((a, b) => b.saved - a.saved);
  const totalFull = patches.reduce((n, p) => n + p.full, 0);
  const totalPatch = patches.reduce((n, p) => n + p.patch_size, 0);
  const totalSavedServed = patches.reduce((n, p) => n + p.savedServed, 0);
  const out = [h('h2', { class: 'page-title' }, 'Patches')];
  out.push(h('dl', { class: 'stats' },
    h('div', {}, h('dt', {}, 'Patches cached'), h('dd', {}, String(builds.cache_patches ?? patches.length))),
    h('div', {}, h('dt', {}, 'Cache size'), h('dd', {}, bytes(builds.cache_bytes ?? totalPatch))),
    h('div', {}, h('dt', {}, 'Patch / full model'), h('dd', {}, totalFull ? percent(totalPatch / totalFull) : '–')),
    h('div', {}, h('dt', {}, 'Bytes saved by downloads so far'), h('dd', {}, bytes(totalSavedServed))),
    h('div', {}, h('dt', {}, 'Builds queued / running'), h('dd', {}, `${builds.queued ?? 0} / ${builds.running ?? 0}`))));
  out.push(section('Patch size against the full model',
    patches.length ? barChart({
      title: 'Patch size against the full model, per pair',
      bars: patches.slice(0, 25).map((p) => ({ label: `${p.model} ${p.source_version}→${p.target_version}`, values: [p.full, p.patch_size] })),
      series: [{ name: 'full model', cls: 's-full' }, { name: 'patch', cls: 's-committed' }],
      format: bytes,
    }) : h('p', { class: 'muted' }, 'No patch has been built yet.'),
    table('Cached patches', [
      { label: 'Model', cell: (p) => p.model },
      { label: 'Pair', cell: (p) => `${p.source_version} → ${p.target_version}` },
      { label: 'Profile', cell: (p) => p.profile },
      { label: 'Patch', num: true, cell: (p) => bytes(p.patch_size) },
      { label: 'Full model', num: true, cell: (p) => bytes(p.full) },
      { label: 'Saved per download', num: true, cell: (p) => (p.full ? `${bytes(p.saved)} (${percent(p.saved / p.full)})` : '–') },
      { label: 'Build time', num: true, cell: (p) => (p.build_seconds ? `${p.build_seconds.toFixed(2)} s` : '–') },
      { label: 'Hits', num: true, cell: (p) => p.hits },
      { label: 'Bytes served', num: true, cell: (p) => bytes(p.bytes_served) },
    ], patches, { empty: 'The cache is empty.' })));
  out.push(section('Builds',
    table('Builds queued and running', [
      { label: 'Model', cell: (b) => b.model },
      { label: 'Pair', cell: (b) => `${b.source_version} → ${b.target_version}` },
      { label: 'Profile', cell: (b) => b.profile },
      { label: 'State', cell: (b) => h('span', { class: `badge st-${b.state}` }, b.state) },
    ], builds.builds || [], { empty: 'No build is queued or running.' }),
    table('Recent build failures', [
      { label: 'Model', cell: (b) => b.model },
      { label: 'Pair', cell: (b) => `${b.source_version} → ${b.target_version}` },
      { label: 'Error', cell: (b) => b.error },
      { label: 'When', cell: (b) => `${b.seconds_ago} s ago` },
    ], builds.failures || [], { empty: 'No recent failures.' })));
  out.push(section('Evicted',
    table('Patches removed by eviction', [
      { label: 'Model', cell: (p) => p.model },
      { label: 'Pair', cell: (p) => `${p.source_version} → ${p.target_version}` },
      { label: 'Size', num: true, cell: (p) => bytes(p.patch_size) },
      { label: 'Hits', num: true, cell: (p) => p.hits },
      { label: 'Evicted', cell: (p) => ago(p.evicted_at) },
    ], builds.evictions || [], { empty: 'Nothing has been evicted since the server started.' })));
  return out;
}
