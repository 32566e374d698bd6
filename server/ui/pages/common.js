// Shared reading of the API's device rows.
export function currentVersion(device) {
  if (device.version) return device.version;
  if (device.current_version) return device.current_version;
  return device.state === 'committed' ? device.to_version : (device.from_version || device.to_version || '');
}

export function lastSeen(device) {
  return device.last_seen || device.received_at || 0;
}

export async function allDevices(api) {
  const doc = await api('/admin/devices?limit=1000');
  return Array.isArray(doc) ? doc : (doc.devices || []);
}

export function tagsText(tags) {
  if (!tags || typeof tags !== 'object') return '';
  return Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(' ');
}
