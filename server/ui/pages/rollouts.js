// Rollouts: each rollout's stage and progress over time, its failure rate against the threshold,
// why it paused; pause / resume / advance / abort (confirmed first) and a form to create one.
import { api, ApiError } from '../api.js';
import { lineChart } from '../charts.js';
import { bytes, h, percent, section, table } from '../dom.js';

const STATES = ['offered', 'downloading', 'committed', 'failed', 'rolled_back'];
// Progress samples seen by this tab, per rollout (the server keeps transitions, not samples).
const samples = new Map();
let formState = { model: '', version: '', group: '', stages: '1,10,50,100', max_failure_rate: '0.05', min_reports: '20', stage_min_seconds: '' };

function countsOf(r) {
  const c = r.counts || r.devices || {};
  return Object.fromEntries(STATES.map((s) => [s, Number(c[s] || 0)]));
}

function failureRate(r) {
  if (typeof r.failure_rate === 'number') return r.failure_rate;
  const c = countsOf(r);
  const reports = c.committed + c.failed + c.rolled_back;
  return reports ? (c.failed + c.rolled_back) / reports : 0;
}

function stageText(r) {
  const stages = r.stages || [];
  const i = r.stage_index ?? r.current_stage ?? r.stage ?? 0;
  return stages.length ? `stage ${Number(i) + 1} of ${stages.length} (${stages[i] ?? '?'} %)` : '–';
}

function record(r) {
  const key = String(r.id);
  const list = samples.get(key) || [];
  const c = countsOf(r);
  list.push({ t: Date.now() / 1000, values: [c.offered, c.committed, c.failed, c.rolled_back] });
  if (list.length > 720) list.shift();
  samples.set(key, list);
  return list;
}

function actions(r, confirm, refresh, readOnly) {
  if (readOnly) return h('p', { class: 'muted' }, 'Read-only demo: sign in to change rollouts.');
  const act = async (verb) => {
    const ok = await confirm(`${verb[0].toUpperCase()}${verb.slice(1)} rollout ${r.id} (${r.model} ${r.version})?`);
    if (!ok) return;
    try {
      await api(`/admin/rollouts/${encodeURIComponent(r.id)}/${verb}`, { method: 'POST', body: {} });
      refresh();
    } catch (e) {
      alertBox.textContent = `Could not ${verb}: ${e.message}`;
    }
  };
  const alertBox = h('p', { class: 'error', role: 'alert' });
  const can = {
    pause: ['running', 'scheduled'].includes(r.state),
    resume: r.state === 'paused',
    advance: ['running', 'paused'].includes(r.state),
    abort: !['completed', 'aborted'].includes(r.state),
  };
  return h('div', { class: 'actions' },
    Object.entries(can).map(([verb, enabled]) => h('button', {
      type: 'button', class: verb === 'abort' ? 'danger' : 'secondary', disabled: !enabled,
      'data-action': verb, 'data-rollout': r.id, onclick: () => act(verb),
    }, verb[0].toUpperCase() + verb.slice(1))),
    alertBox);
}

function rolloutCard(r, confirm, refresh, readOnly) {
  const c = countsOf(r);
  const rate = failureRate(r);
  const threshold = Number(r.max_failure_rate ?? 0);
  return section(`Rollout ${r.id}: ${r.model} ${r.version}`,
    h('dl', { class: 'stats' },
      h('div', {}, h('dt', {}, 'State'), h('dd', {}, h('span', { class: `badge st-${r.state}`, 'data-state': r.state }, r.state))),
      h('div', {}, h('dt', {}, 'Stage'), h('dd', {}, stageText(r))),
      h('div', {}, h('dt', {}, 'Group'), h('dd', {}, r.group || 'all devices')),
      h('div', {}, h('dt', {}, 'Failure rate'), h('dd', { class: rate > threshold ? 'error' : '' }, `${percent(rate)} of max ${percent(threshold)}`)),
      h('div', {}, h('dt', {}, 'Bytes served'), h('dd', {}, bytes(r.bytes_served)))),
    r.reason || r.pause_reason ? h('p', { class: 'reason' }, `Why: ${r.reason || r.pause_reason}`) : null,
    table(`Devices in rollout ${r.id}`, STATES.map((s) => ({ label: s.replace('_', ' '), num: true, cell: () => c[s] })), [r]),
    lineChart({
      title: `Progress of rollout ${r.id}`,
      points: record(r),
      series: [{ name: 'offered', cls: 's-offered' }, { name: 'committed', cls: 's-committed' },
        { name: 'failed', cls: 's-failed' }, { name: 'rolled back', cls: 's-rolled' }],
    }),
    actions(r, confirm, refresh, readOnly),
    (r.transitions || r.history || []).length ? table(`Transitions of rollout ${r.id}`, [
      { label: 'When', cell: (t) => (t.at ? new Date(t.at * 1000).toLocaleString() : '') },
      { label: 'From', cell: (t) => t.from || '' },
      { label: 'To', cell: (t) => t.to || t.state || '' },
      { label: 'By', cell: (t) => t.actor || t.by || '' },
      { label: 'Why', cell: (t) => t.reason || '' },
    ], (r.transitions || r.history).slice(-20).reverse()) : null);
}

function createForm(manifest, refresh) {
  const models = manifest.models || {};
  const error = h('p', { class: 'error', role: 'alert', id: 'create-error' });
  const field = (name, label, input) => h('div', { class: 'field' }, h('label', { for: `rf-${name}` }, label), input);
  const input = (name, attrs = {}) => h('input', {
    id: `rf-${name}`, name, value: formState[name], ...attrs,
    oninput: (e) => { formState[name] = e.target.value; },
  });
  const versionSelect = h('select', { id: 'rf-version', name: 'version', onchange: (e) => { formState.version = e.target.value; } });
  const fillVersions = () => {
    const m = models[formState.model];
    versionSelect.replaceChildren(...((m && m.versions) || []).slice().reverse()
      .map((v) => h('option', { value: v.version, selected: v.version === formState.version }, v.version)));
    formState.version = versionSelect.value;
  };
  const modelSelect = h('select', {
    id: 'rf-model', name: 'model', required: true,
    onchange: (e) => { formState.model = e.target.value; fillVersions(); },
  }, Object.keys(models).sort().map((m) => h('option', { value: m, selected: m === formState.model }, m)));
  if (!formState.model) formState.model = modelSelect.value;
  fillVersions();
  const submit = async (e) => {
    e.preventDefault();
    const stages = formState.stages.split(/[ ,]+/).filter(Boolean).map(Number);
    const body = {
      model: formState.model, version: formState.version, stages,
      max_failure_rate: Number(formState.max_failure_rate), min_reports: Number(formState.min_reports),
    };
    if (formState.group) body.group = formState.group;
    if (formState.stage_min_seconds) body.stage_min_seconds = Number(formState.stage_min_seconds);
    try {
      await api('/admin/rollouts', { method: 'POST', body });
      error.textContent = '';
      document.activeElement.blur();
      refresh();
    } catch (err) {
      error.textContent = err instanceof ApiError ? `Refused: ${err.message}` : String(err);
    }
  };
  return section('Start a rollout', h('form', { id: 'rollout-form', onsubmit: submit },
    field('model', 'Model', modelSelect),
    field('version', 'Version', versionSelect),
    field('group', 'Group (empty: all devices)', input('group')),
    field('stages', 'Stages, % of devices', input('stages', { inputmode: 'numeric', 'aria-describedby': 'rf-stages-help' })),
    h('p', { id: 'rf-stages-help', class: 'muted' }, 'Increasing percentages ending at 100, e.g. 1, 10, 50, 100.'),
    field('max_failure_rate', 'Pause above failure rate (0–1)', input('max_failure_rate', { inputmode: 'decimal' })),
    field('min_reports', 'Minimum reports before judging', input('min_reports', { inputmode: 'numeric' })),
    field('stage_min_seconds', 'Minimum seconds per stage', input('stage_min_seconds', { inputmode: 'numeric' })),
    h('button', { type: 'submit' }, 'Start rollout'),
    error));
}

export async function rolloutsPage(arg, { confirm, readOnly }) {
  const refresh = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  let doc;
  try {
    doc = await api('/admin/rollouts');
  } catch (e) {
    if (e.status === 404) return [h('h2', { class: 'page-title' }, 'Rollouts'), h('p', {}, 'This server has no rollout engine.')];
    throw e;
  }
  const manifest = readOnly ? { models: {} } : await api('/manifest');
  const rollouts = (Array.isArray(doc) ? doc : doc.rollouts || []).slice().sort((a, b) => String(b.id).localeCompare(String(a.id), undefined, { numeric: true }));
  const shown = arg ? rollouts.filter((r) => String(r.id) === arg) : rollouts;
  const out = [h('h2', { class: 'page-title' }, 'Rollouts')];
  if (!shown.length) out.push(h('p', { class: 'muted' }, arg ? `No rollout ${arg}.` : 'No rollout yet: every device gets the latest version.'));
  for (const r of shown) out.push(rolloutCard(r, confirm, refresh, readOnly));
  if (!readOnly && !arg) out.push(createForm(manifest, refresh));
  return out;
}
