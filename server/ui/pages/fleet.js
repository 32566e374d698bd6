// Fleet: every model, its versions, how many devices run each, and devices not seen lately.
import { api } from '../api.js';
import { barChart } from '../charts.js';
import { ago, bytes, h, section, table } from '../dom.js';
import { allDevices, currentVersion, lastSeen } from './common.js';

const STALE_SECONDS = 24 * 3600;

export async function fleetPage() {
  const [manifest, devices] = await Promise.all([api('/manifest'), allDevices(api)]);
  const models = manifest.models || {};
  const signedTargets = new Set((manifest.patches || []).filter((p) => p.signed).map((p) => `${p.model}/${p.target_version}`));
  const out = [h('h2', { class: 'page-title' }, 'Fleet')];
  const names = Object.keys(models).sort();
  out.push(h('p', { class: 'summary' },
    `${names.length} models · ${names.reduce((n, m) => n + (models[m].versions || []).length, 0)} versions · ${devices.length} devices reporting`));
  for (const name of names) {
    const m = models[name];
    const counts = new Map();
    for (const d of devices) {
      if (d.model !== name) continue;
      const v = currentVersion(d);
      counts.set(v, (counts.get(v) || 0) + 1);
    }
    const versions = [...(m.versions || [])].reverse();  // newest first
    const rows = versions.map((v) => ({ ...v, devices: counts.get(v.version) || 0 }));
    const channelOf = (v) => Object.entries(m.channels || {}).filter(([, ver]) => ver === v).map(([c]) => c).join(', ');
    out.push(section(`Model ${name}`,
      h('p', { class: 'muted' }, `latest: ${m.latest}`),
      table(`Versions of ${name}`, [
        { label: 'Number', num: true, cell: (v) => v.number ?? v.rank ?? '' },
        { label: 'Version', cell: (v) => h('span', { class: 'mono' }, v.version) },
        { label: 'Size', num: true, cell: (v) => bytes(v.file_size) },
        { label: 'Format', cell: (v) => v.format },
        { label: 'Signed patches', cell: (v) => (signedTargets.has(`${name}/${v.version}`) ? 'signed' : 'unsigned') },
        { label: 'Channels', cell: (v) => channelOf(v.version) },
        { label: 'Devices', num: true, cell: (v) => v.devices },
      ], rows),
      rows.some((r) => r.devices) ? barChart({
        title: `Devices running each version of ${name}`,
        bars: rows.map((r) => ({ label: r.version, values: [r.devices] })),
        series: [{ name: 'devices', cls: 's-committed' }],
      }) : h('p', { class: 'muted' }, 'No device has reported on this model yet.')));
  }
  const now = Date.now() / 1000;
  const stale = devices.filter((d) => now - lastSeen(d) > STALE_SECONDS).sort((a, b) => lastSeen(a) - lastSeen(b));
  out.push(section('Devices not seen for a day',
    table('Devices not seen for a day', [
      { label: 'Device', cell: (d) => h('a', { href: `#/devices/${encodeURIComponent(d.device_id)}` }, d.device_id) },
      { label: 'Model', cell: (d) => d.model },
      { label: 'Version', cell: (d) => currentVersion(d) },
      { label: 'Last seen', cell: (d) => ago(lastSeen(d), now) },
    ], stale, { empty: 'Every device reported within the last day.' })));
  return out;
}
