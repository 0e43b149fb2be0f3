// The console's JSON API, as the page reads it.

async function getJson(path) {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return response.json();
}

export const healthModel = () => getJson('/api/health-model');
export const series = () => getJson('/api/series');
export const history = () => getJson('/api/history');
export const incidents = () => getJson('/api/incidents');
export const launch = () => getJson('/api/launch');

/**
 * Drains or undrains a region. The token goes only into this request's Authorization header;
 * the console passes it on to the region's services and keeps nothing.
 */
export async function regionAction(region, action, token) {
  const response = await fetch(`/api/regions/${encodeURIComponent(region)}/${action}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { status: response.status, body };
}
