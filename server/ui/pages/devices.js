// Devices: a searchable table of every device's latest state, and one device's report history.
import { api } from '../api.js';
import { ago, bytes, h, section, table } from '../dom.js';
import { allDevices, currentVersion, lastSeen, tagsText } from './common.js';

let query = '';

function matches(d, q) {
  if (!q) return true;
  const hay = [d.device_id, d.model, currentVersion(d), d.state, d.error, tagsText(d.tags)].join(' ').toLowerCase();
  return q.toLowerCase().split(/\s+/).filter(Boolean).every((word) => hay.includes(word));
}

export async function devicesPage() {
  const devices = await allDevices(api);
  const now = Date.now() / 1000;
  const results = h('div', { id: 'device-results' });
  const draw = () => {
    const rows = devices.filter((d) => matches(d, query));
    results.replaceChildren(
      h('p', { class: 'muted', 'aria-live': 'polite' }, `${rows.length} of ${devices.length} devices`),
      table('Devices', [
        { label: 'Device', cell: (d) => h('a', { href: `#/devices/${encodeURIComponent(d.device_id)}` }, d.device_id) },
        { label: 'Tags', cell: (d) => tagsText(d.tags) },
        { label: 'Model', cell: (d) => d.model },
        { label: 'Version', cell: (d) => currentVersion(d) },
        { label: 'Last state', cell: (d) => h('span', { class: `badge st-${d.state}` }, d.state) },
        { label: 'Last error', cell: (d) => d.error || '' },
        { label: 'Last seen', cell: (d) => ago(lastSeen(d), now) },
        { label: 'Downloaded', num: true, cell: (d) => bytes(d.bytes_downloaded) },
      ], rows, { empty: devices.length ? 'No device matches.' : 'No device has reported yet.' }));
  };
  const search = h('input', {
    id: 'device-search', type: 'search', value: query, placeholder: 'id, model, state, tag…',
    'aria-controls': 'device-results',
    oninput: (e) => { query = e.target.value; draw(); },
  });
  draw();
  return [
    h('h2', { class: 'page-title' }, 'Devices'),
    h('div', { class: 'search' }, h('label', { for: 'device-search' }, 'Search devices'), search),
    results,
  ];
}

export async function devicePage(id) {
  let history;
  try {
    history = await api(`/admin/devices/${encodeURIComponent(id)}/reports`);
  } catch (e) {
    if (e.status === 404) return [h('h2', { class: 'page-title' }, `Device ${id}`), h('p', {}, 'This device has not reported.')];
    throw e;
  }
  const reports = history.reports || [];
  const latest = reports[0] || {};
  return [
    h('p', {}, h('a', { href: '#/devices' }, '← All devices')),
    h('h2', { class: 'page-title' }, `Device ${id}`),
    h('dl', { class: 'stats' },
      h('div', {}, h('dt', {}, 'Model'), h('dd', {}, latest.model || '–')),
      h('div', {}, h('dt', {}, 'Version'), h('dd', {}, currentVersion(latest) || '–')),
      h('div', {}, h('dt', {}, 'Last state'), h('dd', {}, latest.state || '–')),
      h('div', {}, h('dt', {}, 'Last seen'), h('dd', {}, ago(latest.received_at)))),
    section('Report history', table(`Reports from ${id}`, [
      { label: 'When', cell: (r) => new Date(r.received_at * 1000).toLocaleString() },
      { label: 'Model', cell: (r) => r.model },
      { label: 'From', cell: (r) => r.from_version },
      { label: 'To', cell: (r) => r.to_version },
      { label: 'State', cell: (r) => h('span', { class: `badge st-${r.state}` }, r.state) },
      { label: 'Error', cell: (r) => r.error || '' },
      { label: 'Downloaded', num: true, cell: (r) => bytes(r.bytes_downloaded) },
    ], reports)),
  ];
}
